import contextlib
import io
import math
import pickle

import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from wsis.evaluation.ap_r import InstanceAPAccumulator, average_precision, match_predictions
from wsis.core.masks import to_rle


def box_mask(y0, y1, x0, x1, shape=(10, 10)):
    m = np.zeros(shape, dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def pred(mask, score, cat=0):
    return {"category_id": cat, "score": score, "segmentation": mask}


def gt(mask, cat=0, crowd=0):
    return {"category_id": cat, "segmentation": mask, "iscrowd": crowd}


A = box_mask(0, 5, 0, 5)
B = box_mask(5, 10, 5, 10)
ELSEWHERE = box_mask(0, 5, 5, 10)

# TP, FP, TP against 2 GT: recall (.5, .5, 1), precision (1, .5, 2/3)
HAND_AP = {"voc": 5 / 6, "voc07": (6 * 1 + 5 * 2 / 3) / 11, "coco101": (51 + 50 * 2 / 3) / 101}


@pytest.mark.parametrize("interp", ["voc", "voc07", "coco101"])
def test_average_precision_hand_computed(interp):
    assert average_precision(np.array([True, False, True]), 2, interp) == pytest.approx(HAND_AP[interp], abs=1e-12)


@pytest.mark.parametrize("interp", ["voc", "voc07", "coco101"])
def test_three_preds_two_gt(interp):
    acc = InstanceAPAccumulator(1, interpolation=interp)
    acc.add([pred(B, 0.7), pred(A, 0.9), pred(ELSEWHERE, 0.8)], [gt(A), gt(B)])
    res = acc.summarize()
    for t in ("0.25", "0.5", "0.7", "0.75"):
        assert res[f"AP^r@{t}"] == pytest.approx(100 * HAND_AP[interp], abs=1e-9)
    assert res["AP^r_vol"] == pytest.approx(100 * HAND_AP[interp], abs=1e-9)
    assert res["num_classes_evaluated"] == 1


def test_average_precision_edge_cases():
    assert average_precision(np.zeros(0, dtype=bool), 3) == 0.0
    assert average_precision(np.array([True, True]), 2) == pytest.approx(1.0)
    assert average_precision(np.array([True]), 2, "voc") == pytest.approx(0.5)
    with pytest.raises(ValueError, match="interpolation"):
        average_precision(np.array([True]), 1, "bogus")
    with pytest.raises(ValueError, match="num_gt"):
        average_precision(np.array([True]), 0)


def test_iou_threshold_is_inclusive_and_vol_averages_nine_thresholds():
    g = box_mask(0, 4, 0, 5)  # 20 px
    p = np.zeros_like(g)
    p.flat[np.flatnonzero(g)[:11]] = True  # 11 of its pixels: IoU 11/20 = 0.55
    acc = InstanceAPAccumulator(1)
    acc.add([pred(p, 0.9)], [gt(g)])
    res = acc.summarize()
    assert res["AP^r@0.25"] == 100.0 and res["AP^r@0.5"] == 100.0
    assert res["AP^r@0.7"] == 0.0 and res["AP^r@0.75"] == 0.0
    assert res["AP^r_vol"] == pytest.approx(100 * 5 / 9)  # TP at 0.1 ... 0.5, FP at 0.6 ... 0.9

    half = box_mask(0, 2, 0, 5)  # IoU exactly 0.5 -> TP at 0.5
    acc = InstanceAPAccumulator(1, iou_thresholds=(0.5,), compute_vol=False)
    acc.add([pred(half, 0.9)], [gt(g)])
    assert acc.summarize() == {"AP^r@0.5": 100.0, "num_classes_evaluated": 1}


def test_duplicate_of_matched_gt_is_false_positive():
    acc = InstanceAPAccumulator(1, interpolation="voc")
    acc.add([pred(A, 0.9), pred(A, 0.8), pred(B, 0.7)], [gt(A), gt(B)])
    assert acc.summarize()["AP^r@0.5"] == pytest.approx(100 * 5 / 6)
    flags = match_predictions(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.zeros((3, 0)), [0.5])
    assert flags[:, 0].tolist() == [1, 0, 1]


def test_match_to_best_unmatched_gt():
    # the first prediction takes the GT it overlaps most; the second falls back on the other one
    ious = np.array([[0.6, 0.8], [0.7, 0.9]])
    assert match_predictions(ious, np.zeros((2, 0)), [0.5, 0.75])[:, 0].tolist() == [1, 1]
    assert match_predictions(ious, np.zeros((2, 0)), [0.5, 0.75])[:, 1].tolist() == [1, 0]


def test_crowd_is_ignored_not_gt():
    crowd = box_mask(5, 10, 0, 10)
    inside_crowd = box_mask(6, 8, 1, 3)  # IoU with crowd 4/50, but |p ∩ crowd| / |p| = 1
    acc = InstanceAPAccumulator(1)
    acc.add([pred(inside_crowd, 0.95), pred(A, 0.9)], [gt(A), gt(crowd, crowd=1)])
    res = acc.summarize()
    assert res["AP^r@0.5"] == 100.0  # the crowd hit is neither TP nor FP
    assert acc._gt_counts.tolist() == [1]  # crowds are not GT

    # without the crowd flag the same region is an ordinary GT: the small prediction is a FP and it is missed
    acc = InstanceAPAccumulator(1)
    acc.add([pred(inside_crowd, 0.95), pred(A, 0.9)], [gt(A), gt(crowd, crowd=0)])
    assert acc.summarize()["AP^r@0.5"] == pytest.approx(100 * 0.5 * 0.5)


def test_crowd_only_class_is_not_evaluated():
    acc = InstanceAPAccumulator(2)
    acc.add([pred(A, 0.9, cat=0), pred(B, 0.9, cat=1)], [gt(A, cat=0), gt(B, cat=1, crowd=1)])
    res = acc.summarize()
    assert res["num_classes_evaluated"] == 1
    assert res["AP^r@0.5"] == 100.0


def test_empty_predictions_give_zero():
    acc = InstanceAPAccumulator(2)
    acc.add([], [gt(A, cat=0)])
    acc.add([], [])
    res = acc.summarize()
    assert res["num_classes_evaluated"] == 1
    assert all(v == 0.0 for k, v in res.items() if k.startswith("AP"))


def test_no_ground_truth_is_nan_free():
    acc = InstanceAPAccumulator(2, class_names=["a", "b"])
    acc.add([pred(A, 0.9, cat=1)], [])
    res = acc.summarize()
    assert res["num_classes_evaluated"] == 0
    assert all(not math.isnan(v) for v in res.values())
    assert all(v == 0.0 for k, v in res.items() if k.startswith("AP"))
    assert not any(k.endswith("-a") or k.endswith("-b") for k in res)
    assert np.isnan(acc.ap_per_class()).all()


def test_multi_class_mean_and_per_class_keys():
    acc = InstanceAPAccumulator(3, class_names=["cat", "dog", "cow"])
    # class 0: perfect; class 1: one of two found (AP 0.5); class 2: no GT, only a FP -> excluded
    acc.add([pred(A, 0.9, cat=0), pred(A, 0.8, cat=1), pred(B, 0.7, cat=2)], [gt(A, cat=0), gt(A, cat=1)])
    acc.add([], [gt(B, cat=1)])
    res = acc.summarize()
    assert res["AP^r@0.5"] == pytest.approx(75.0)
    assert res["AP^r@0.5-cat"] == pytest.approx(100.0)
    assert res["AP^r@0.5-dog"] == pytest.approx(50.0)
    assert "AP^r@0.5-cow" not in res
    assert res["num_classes_evaluated"] == 2


def test_ranking_is_global_across_images():
    # image 1: a FP with a high score; image 2: a TP with a lower score -> precision 1/2 at recall 1
    acc = InstanceAPAccumulator(1, interpolation="voc")
    acc.add([pred(ELSEWHERE, 0.9)], [])
    acc.add([pred(A, 0.5)], [gt(A)])
    assert acc.summarize()["AP^r@0.5"] == pytest.approx(50.0)


def random_image(rng, num_classes, shape=(24, 32)):
    gts, preds = [], []
    for _ in range(rng.integers(0, 5)):
        y0, x0 = rng.integers(0, shape[0] - 4), rng.integers(0, shape[1] - 4)
        m = box_mask(y0, y0 + rng.integers(3, 12), x0, x0 + rng.integers(3, 12), shape)
        cat = int(rng.integers(num_classes))
        gts.append(gt(m, cat=cat, crowd=int(rng.random() < 0.15)))
        for _ in range(rng.integers(0, 3)):  # noisy copies, i.e. duplicates
            noisy = np.roll(m, (int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), axis=(0, 1))
            preds.append(pred(noisy, float(rng.random()), cat=cat))
    for _ in range(rng.integers(0, 3)):  # background false positives
        y0, x0 = rng.integers(0, shape[0] - 4), rng.integers(0, shape[1] - 4)
        preds.append(pred(box_mask(y0, y0 + 4, x0, x0 + 6, shape), float(rng.random()), int(rng.integers(num_classes))))
    return preds, gts


def test_merge_equals_single_accumulator_and_pickles():
    rng = np.random.default_rng(0)
    images = [random_image(rng, 3) for _ in range(12)]
    whole = InstanceAPAccumulator(3)
    left, right = InstanceAPAccumulator(3), InstanceAPAccumulator(3)
    for i, (p, g) in enumerate(images):
        whole.add(p, g)
        (left if i < 5 else right).add(p, g)
    right = pickle.loads(pickle.dumps(right))
    merged = left.merge(right)
    assert merged.num_images == 12
    assert merged.summarize() == whole.summarize()
    with pytest.raises(ValueError, match="merge"):
        merged.merge(InstanceAPAccumulator(4))


def test_rle_polygon_and_array_inputs_agree():
    acc_arr, acc_rle = InstanceAPAccumulator(1), InstanceAPAccumulator(1)
    acc_arr.add([pred(A, 0.9), pred(B, 0.3)], [gt(A), gt(B)])
    acc_rle.add(
        [pred(to_rle(A), 0.9), pred(mask_util.encode(np.asfortranarray(B.astype(np.uint8))), 0.3)],
        [gt(to_rle(A)), gt([[5, 5, 10, 5, 10, 10, 5, 10]])],  # polygon of B (pixel corners)
    )
    assert acc_rle.summarize() == acc_arr.summarize()


def test_bad_inputs():
    acc = InstanceAPAccumulator(2)
    with pytest.raises(ValueError, match=r"\(10, 10\).*\(8, 8\)"):
        acc.add([pred(A, 0.9)], [gt(np.zeros((8, 8), dtype=bool))])
    with pytest.raises(ValueError, match="category_id 5"):
        acc.add([pred(A, 0.9, cat=5)], [])
    with pytest.raises(ValueError, match="interpolation"):
        InstanceAPAccumulator(2, interpolation="11pt")
    with pytest.raises(ValueError, match="class names"):
        InstanceAPAccumulator(2, class_names=["a"])
    assert acc.num_images == 0


def _coco_ap(images, num_classes, thresh):
    """pycocotools segm AP (fraction) per class at one IoU threshold, all areas, maxDets 100."""
    categories = [{"id": c + 1, "name": str(c)} for c in range(num_classes)]
    dataset = {"images": [], "annotations": [], "categories": categories}
    results = []
    for img_id, (preds, gts) in enumerate(images, start=1):
        h, w = gts[0]["segmentation"].shape if gts else preds[0]["segmentation"].shape
        dataset["images"].append({"id": img_id, "height": h, "width": w})
        for g in gts:
            rle = to_rle(g["segmentation"])
            dataset["annotations"].append({
                "id": len(dataset["annotations"]) + 1, "image_id": img_id, "category_id": g["category_id"] + 1,
                "segmentation": rle, "area": float(mask_util.area(rle)), "iscrowd": g["iscrowd"],
                "bbox": mask_util.toBbox(rle).tolist(),
            })
        for p in preds:
            results.append({"image_id": img_id, "category_id": p["category_id"] + 1,
                            "segmentation": to_rle(p["segmentation"]), "score": p["score"]})
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, "segm")
        ev.params.iouThrs = np.array([thresh])
        ev.params.areaRng = [[0, 1e10]]
        ev.params.areaRngLbl = ["all"]
        ev.params.maxDets = [100]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][0, :, :, 0, 0]  # (R, K)
    return [float(precision[:, k].mean()) if (precision[:, k] > -1).all() else float("nan") for k in range(num_classes)]


@pytest.mark.parametrize("seed", [1, 2])
def test_coco101_matches_pycocotools(seed):
    rng = np.random.default_rng(seed)
    images = [random_image(rng, 3) for _ in range(15)]
    images = [(p, g) for p, g in images if p or g]
    assert sum(g["iscrowd"] for _, gs in images for g in gs) > 0  # the data really has crowds
    acc = InstanceAPAccumulator(3, iou_thresholds=(0.1, 0.5, 0.75), interpolation="coco101")
    for p, g in images:
        acc.add(p, g)
    flags = np.concatenate([f for per_class in acc._flags for f in per_class])
    assert (flags == -1).any() and (flags == 0).any()  # crowd-ignored predictions and FPs (duplicates) do occur
    ours = acc.ap_per_class()
    for ti, t in enumerate(acc.iou_thresholds):
        if t not in (0.1, 0.5, 0.75):
            continue
        theirs = _coco_ap(images, 3, t)
        np.testing.assert_allclose(ours[:, ti], theirs, rtol=0, atol=1e-12)
        assert not np.isnan(theirs).all()
