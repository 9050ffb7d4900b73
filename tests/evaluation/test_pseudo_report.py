"""The quality report of a store: every GT instance first (dropped masks as stored, missing as empty), then the kept
ones, per COCO size, with warnings when most masks are dropped (issue: a store that kept 1 of 423 masks read 0.756)."""
import json
import logging

import numpy as np
import pytest

from wsis.core.masks import encode_mask
from wsis.data.pseudo_store import PseudoMaskWriter, make_provenance
from wsis.evaluation.pseudo_report import quality_report, quality_summary, quality_warnings
from wsis.pseudo.outputs import write_job_outputs

H = W = 64


def _mask(x0, y0, x1, y1):
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


GT = [(1, _mask(0, 0, 10, 10)), (2, _mask(20, 0, 30, 10)), (3, _mask(0, 20, 40, 60)), (4, _mask(50, 0, 58, 8))]


def _gt_dicts():
    anns = [{"id": i, "category_id": 0, "bbox": [0, 0, 1, 1], "bbox_mode": 1, "iscrowd": 0,
             "segmentation": encode_mask(m)} for i, m in GT]
    return [{"image_id": 1, "height": H, "width": W, "file_name": "missing.jpg", "annotations": anns}]


def _record(valid=(True, False, False)):
    stored = {1: _mask(0, 0, 10, 10), 2: _mask(20, 0, 25, 10), 3: np.zeros((H, W), bool)}  # IoU 1, 0.5, 0
    return {"image_id": 1, "height": H, "width": W, "ignore": None,
            "instances": [{"annotation_id": i, "category_id": 0, "bbox": [0.0, 0.0, 1.0, 1.0],
                           "segmentation": encode_mask(stored[i]), "valid": v, "ignore": None, "score": 1.0}
                          for i, v in zip((1, 2, 3), valid)]}  # annotation 4 has no pseudo instance


def test_most_masks_dropped_reports_all_instances_first_and_warns():
    rep = quality_report({1: _record()}, _gt_dicts())
    assert list(rep)[:4] == ["all/mean_iou", "all/class_mean_iou", "all/iou@0.5", "all/iou@0.75"]
    # all: dropped as stored (1, 0.5, 0), missing as empty (0)
    assert rep["all/mean_iou"] == 0.375 and rep["all/iou@0.5"] == 0.5 and rep["all/iou@0.75"] == 0.25
    assert rep["all/strict_mean_iou"] == 0.375  # no ignore region: strict = mean
    assert rep["kept/mean_iou"] == 1.0 and rep["num_kept"] == 1 and rep["num_instances"] == 4
    assert rep["num_dropped"] == 2 and rep["num_missing"] == 1 and rep["kept_fraction"] == 0.25
    assert rep["pixel_coverage"] == 100 / (100 + 100 + 1600 + 64)  # only the kept mask supervises pixels
    # COCO sizes by GT area: 100, 100, 64 px are small, 1600 px medium, nothing large
    assert (rep["all/small/num_instances"], rep["all/medium/num_instances"], rep["all/large/num_instances"]) == (3, 1, 0)
    assert rep["all/small/mean_iou"] == 0.5 and rep["all/medium/mean_iou"] == 0.0
    assert rep["kept/small/num_instances"] == 1 and rep["kept/small/mean_iou"] == 1.0
    assert list(rep).index("kept_fraction") < list(rep).index("kept/mean_iou")
    warnings = quality_warnings(rep, "WSIS.BOXCASEG.DROP_THRESHOLD")
    assert len(warnings) == 1 and "3 of 4 GT instances (75%)" in warnings[0]
    assert "WSIS.BOXCASEG.DROP_THRESHOLD" in warnings[0]
    line = quality_summary(rep)
    assert line.startswith("quality over all 4 GT instances") and line.index("0.375") < line.index("kept masks only")


def test_no_valid_mask_left_warns_and_a_full_store_does_not():
    rep = quality_report({1: _record(valid=(False, False, False))}, _gt_dicts())
    assert rep["num_kept"] == 0 and rep["kept/mean_iou"] == 0.0 and rep["all/mean_iou"] == 0.375
    assert "no valid pseudo mask remains" in quality_warnings(rep, "X")[0]
    rep = quality_report({1: _record(valid=(True, True, True))}, [dict(_gt_dicts()[0],
                                                                        annotations=_gt_dicts()[0]["annotations"][:3])])
    assert rep["kept_fraction"] == 1.0 and quality_warnings(rep) == []
    assert rep["all/mean_iou"] == rep["kept/mean_iou"] == 0.5


def test_an_image_without_a_record_counts_as_missing():
    rep = quality_report({}, _gt_dicts())
    assert rep["num_instances"] == 4 and rep["num_missing"] == 0 and rep["num_kept"] == 0  # kept/*: not evaluated
    assert rep["all/mean_iou"] == 0.0 and "no valid pseudo mask remains" in quality_warnings(rep)[0]


def test_job_metrics_lead_with_all_instances_and_carry_the_warning(tmp_path, caplog):
    store = tmp_path / "pseudo_masks.json"
    with PseudoMaskWriter(str(store), make_provenance("test", source="s", source_hash="h")) as w:
        w.add(_record())
    gt = _gt_dicts()
    box = [dict(gt[0], annotations=[{k: v for k, v in a.items() if k != "segmentation"} for a in gt[0]["annotations"]])]
    with caplog.at_level(logging.INFO):
        metrics = write_job_outputs(str(tmp_path), str(store), [], box, gt, ["thing"], num_vis=0, hint="THE.KNOB")
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert list(saved)[0] == "all/mean_iou" and saved == metrics and saved["all/mean_iou"] == 0.375
    assert "scoring" in saved and len(saved["warnings"]) == 1 and "THE.KNOB" in saved["warnings"][0]
    assert "quality over all 4 GT instances" in caplog.text and "THE.KNOB" in caplog.text


def _generated(mask, score, category=0):
    return {"annotation_id": None, "category_id": category, "bbox": [0, 0, 1, 1], "segmentation": encode_mask(mask),
            "valid": True, "ignore": None, "score": score}


def test_generated_instances_are_scored_by_ap_r():
    """Instances made from tags pair with no annotation: AP^r by score against every GT mask, by hand."""
    from wsis.evaluation.pseudo_report import generated_quality_report, has_generated_instances

    # a wrong instance ranked first (0.9), then exact copies of GT 1 and GT 3 (IoU 1), GT 2 and 4 never found:
    # ranked TP flags F, T, T over 4 GT -> precision 0, 1/2, 2/3 at recall 0, 1/4, 2/4; VOC AP = (2/3)·(2/4) = 1/3
    insts = [_generated(_mask(40, 40, 64, 64), 0.9), _generated(GT[0][1], 0.8), _generated(GT[2][1], 0.7)]
    records = {1: {"image_id": 1, "height": H, "width": W, "ignore": None, "instances": insts}}
    assert has_generated_instances(records)
    rep = generated_quality_report(records, _gt_dicts(), num_classes=1)
    assert rep["AP^r@0.5"] == pytest.approx(100 / 3)
    assert rep["AP^r@0.25"] == rep["AP^r@0.75"] == rep["AP^r@0.5"]
    assert rep["num_pseudo_instances"] == 3 and rep["num_gt_instances"] == 4
    assert 0 < rep["pixel_miou"] < 1
    # a wrong class finds nothing: AP 0
    wrong = {1: dict(records[1], instances=[_generated(GT[0][1], 0.8, category=1)])}
    assert generated_quality_report(wrong, _gt_dicts(), num_classes=2)["AP^r@0.5"] == 0.0
    paired = {1: dict(records[1], instances=[dict(insts[1], annotation_id=1)])}
    assert not has_generated_instances(paired)


def test_strict_mean_iou_counts_ignored_pixels_as_missed():
    rec = _record(valid=(True, True, True))
    # annotation 2's GT is x 20..30; its mask covers 20..25 and the rest (25..30) is ignored for it
    rec["instances"][1]["ignore"] = encode_mask(_mask(25, 0, 30, 10))
    gt = [dict(_gt_dicts()[0], annotations=_gt_dicts()[0]["annotations"][:3])]
    rep = quality_report({1: rec}, gt)
    assert rep["all/mean_iou"] == pytest.approx((1 + 1 + 0) / 3)  # ignored pixels left out: IoU 1
    assert rep["all/strict_mean_iou"] == pytest.approx((1 + 0.5 + 0) / 3)  # counted as missed: 50 / 100
    assert "strict_mean_iou 0.500" in quality_summary(rep)
