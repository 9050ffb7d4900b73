"""AP^r and PQ evaluators on real shared data: ground truth fed back as predictions scores 100."""
import os

import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.data import DatasetCatalog  # noqa: E402
from detectron2.structures import Instances  # noqa: E402
from PIL import Image  # noqa: E402

import wsis.data.datasets  # noqa: E402,F401
from wsis.evaluation.evaluators import InstanceAPrEvaluator, PanopticQualityEvaluator  # noqa: E402
from wsis.core.masks import to_bool_mask  # noqa: E402
from wsis.evaluation.panoptic_quality import panoptic_rgb_to_id  # noqa: E402

from conftest import SHARED_DATA  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, "coco_tiny")), reason="no shared data")


def _as_prediction(d, drop_last=False):
    anns = [a for a in d["annotations"] if not a["iscrowd"]]
    if drop_last:
        anns = anns[:-1]
    inst = Instances((d["height"], d["width"]))
    masks = [to_bool_mask(a["segmentation"], d["height"], d["width"]) for a in anns]
    inst.pred_masks = torch.from_numpy(np.stack(masks)) if masks else torch.zeros(0, d["height"], d["width"], dtype=bool)
    inst.pred_classes = torch.tensor([a["category_id"] for a in anns], dtype=torch.long)
    inst.scores = torch.ones(len(anns))
    return {"instances": inst}


def test_apr_perfect_and_degraded(tmp_path):
    dicts = DatasetCatalog.get("coco_tiny_val")[:20]
    ev = InstanceAPrEvaluator("coco_tiny_val", output_dir=str(tmp_path))
    ev.reset()
    for d in dicts:
        ev.process([{"image_id": d["image_id"]}], [_as_prediction(d)])
    res = ev.evaluate()["segm_APr"]
    for k in ("AP^r@0.25", "AP^r@0.5", "AP^r@0.7", "AP^r@0.75", "AP^r_vol"):
        assert res[k] == pytest.approx(100.0), k
    assert os.path.isfile(tmp_path / "segm_APr.json")
    ev.reset()
    for d in dicts:
        ev.process([{"image_id": d["image_id"]}], [_as_prediction(d, drop_last=True)])
    assert ev.evaluate()["segm_APr"]["AP^r@0.5"] < 100.0


def test_pq_perfect():
    dicts = DatasetCatalog.get("coco_panoptic_val100")[:10]
    ev = PanopticQualityEvaluator("coco_panoptic_val100")
    ev.reset()
    for d in dicts:
        ids = panoptic_rgb_to_id(np.asarray(Image.open(d["pan_seg_file_name"]).convert("RGB")))
        info = [{"id": s["id"], "category_id": s["category_id"], "isthing": s["isthing"]}
                for s in d["segments_info"] if not s.get("iscrowd", 0)]
        ids[~np.isin(ids, [s["id"] for s in info])] = 0
        ev.process([{"image_id": d["image_id"]}], [{"panoptic_seg": (torch.from_numpy(ids), info)}])
    res = ev.evaluate()["panoptic_seg"]
    assert res["PQ"] == pytest.approx(100.0) and res["PQ_th"] == pytest.approx(100.0)
    assert res["PQ_st"] == pytest.approx(100.0)


def test_pq_degraded_hand_computed():
    """One image's ground truth with one segment of a category with n segments left out (its pixels void): that
    category has TP = n - 1, FN = 1 at IoU 1, so PQ_c = (n - 1) / (n - 1 + 0.5) (panopticapi's RQ with SQ = 1);
    every other category keeps PQ 1; PQ is their mean."""
    d = DatasetCatalog.get("coco_panoptic_val100")[0]
    ids = panoptic_rgb_to_id(np.asarray(Image.open(d["pan_seg_file_name"]).convert("RGB")))
    segs = [s for s in d["segments_info"] if not s.get("iscrowd", 0)]
    counts = {}
    for s in segs:
        counts[s["category_id"]] = counts.get(s["category_id"], 0) + 1
    dropped = max(segs, key=lambda s: (counts[s["category_id"]], s["isthing"]))  # a category with most segments
    kept = [s for s in segs if s["id"] != dropped["id"]]
    pred = ids.copy()
    pred[~np.isin(pred, [s["id"] for s in kept])] = 0
    info = [{"id": s["id"], "category_id": s["category_id"], "isthing": s["isthing"]} for s in kept]
    ev = PanopticQualityEvaluator("coco_panoptic_val100")
    ev.reset()
    ev.process([{"image_id": d["image_id"]}], [{"panoptic_seg": (torch.from_numpy(pred), info)}])
    res = ev.evaluate()["panoptic_seg"]
    n = counts[dropped["category_id"]]
    per_class = [1.0] * (len(counts) - 1) + [(n - 1) / (n - 0.5)]
    assert res["PQ"] == pytest.approx(100 * np.mean(per_class))
    # matched segments have IoU 1; a category left with no TP has SQ 0 (panopticapi)
    assert res["SQ"] == pytest.approx(100.0 * (len(counts) - (n == 1)) / len(counts))
    assert res["RQ"] == pytest.approx(res["PQ"])  # per category RQ_c = PQ_c: SQ_c is 1 wherever TP > 0
