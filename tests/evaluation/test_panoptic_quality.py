import json
import math
import os
import pickle
from collections import Counter

import numpy as np
import pytest

from wsis.evaluation.panoptic_quality import PQAccumulator, panoptic_id_to_rgb, panoptic_rgb_to_id

CATS = [
    {"id": 1, "isthing": 1, "name": "person"},
    {"id": 2, "isthing": 1, "name": "car"},
    {"id": 3, "isthing": 0, "name": "sky"},
]
_DEFAULT_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")
COCO_PANOPTIC = os.path.join(os.environ.get("WSIS_DATASETS", _DEFAULT_DATA), "coco_panoptic_val100")


def cols(c0, c1, sid, base=None, shape=(4, 8)):
    """Map with columns [c0, c1) set to segment id ``sid``."""
    m = np.zeros(shape, dtype=np.int64) if base is None else base.copy()
    m[:, c0:c1] = sid
    return m


def seg(sid, cat, crowd=0):
    return {"id": sid, "category_id": cat, "iscrowd": crowd}


def test_one_tp_one_fp_one_fn():
    gt = cols(4, 8, 2, cols(0, 4, 1))  # person cols 0-3, sky cols 4-7
    pred = cols(3, 8, 20, cols(0, 3, 10))  # person cols 0-2 (IoU 12/16), car cols 3-7
    acc = PQAccumulator(CATS)
    acc.add(pred, [seg(10, 1), seg(20, 2)], gt, [seg(1, 1), seg(2, 3)])
    assert (acc.tp.tolist(), acc.fp.tolist(), acc.fn.tolist()) == ([1, 0, 0], [0, 1, 0], [0, 0, 1])
    res = acc.summarize()
    assert res["PQ"] == pytest.approx(100 * 0.75 / 3)
    assert res["SQ"] == pytest.approx(100 * 0.75 / 3)
    assert res["RQ"] == pytest.approx(100 / 3)
    assert res["PQ_th"] == pytest.approx(100 * 0.75 / 2)
    assert res["RQ_th"] == pytest.approx(50.0)
    assert res["PQ_st"] == res["SQ_st"] == res["RQ_st"] == 0.0
    assert res["PQ-person"] == pytest.approx(75.0) and res["SQ-person"] == pytest.approx(75.0)
    assert res["RQ-person"] == 100.0 and res["PQ-car"] == 0.0 and res["PQ-sky"] == 0.0
    assert acc.compute()["Things"]["n"] == 2


def test_match_needs_iou_strictly_above_half():
    gt = cols(0, 4, 1)
    pred = cols(0, 2, 10, cols(2, 8, 11))  # person IoU 8/16 = 0.5 exactly; sky over the rest
    acc = PQAccumulator(CATS)
    acc.add(pred, [seg(10, 1), seg(11, 3)], gt, [seg(1, 1)])
    assert (acc.tp[0], acc.fp[0], acc.fn[0]) == (0, 1, 1)
    # the sky prediction lies on GT void (cols 4-7) for 16 of its 24 pixels: ignored, not a FP
    assert acc.fp[2] == 0
    assert acc.summarize()["PQ"] == 0.0


def test_void_pixels_leave_the_union():
    gt = cols(0, 3, 1)  # person cols 0-2, void elsewhere
    pred = cols(0, 6, 10)  # 24 px: 12 on the person, 12 on void -> union 24 + 12 - 12 - 12 = 12, IoU 1
    acc = PQAccumulator(CATS)
    acc.add(pred, [seg(10, 1)], gt, [seg(1, 1)])
    res = acc.summarize()
    assert res["PQ"] == 100.0 and res["SQ"] == 100.0 and res["RQ"] == 100.0


def test_unmatched_prediction_on_void_is_not_fp():
    gt = cols(0, 4, 1)
    pred = cols(1, 8, 20, cols(0, 1, 10))  # person col 0 (IoU 4/16); car cols 1-7, 16 of its 28 px on void
    acc = PQAccumulator(CATS)
    acc.add(pred, [seg(10, 1), seg(20, 2)], gt, [seg(1, 1)])
    assert acc.fp.tolist() == [1, 0, 0]  # the car is ignored, the small person is a FP
    assert acc.fn.tolist() == [1, 0, 0]
    # with 12 of 28 px on void (< half) the car becomes a FP
    acc.reset()
    acc.add(cols(0, 7, 20), [seg(20, 2)], cols(0, 4, 1), [seg(1, 1)])
    assert acc.fp.tolist() == [0, 1, 0]


def test_crowd_regions():
    gt = cols(4, 8, 2, cols(0, 4, 1))  # person crowd cols 0-3, person cols 4-7
    gt_info = [seg(1, 1, crowd=1), seg(2, 1)]
    acc = PQAccumulator(CATS)
    # a person prediction on the crowd is ignored; a car prediction on the crowd is a FP; the crowd is not a FN
    pred = cols(4, 8, 20, cols(0, 4, 10))
    acc.add(pred, [seg(10, 1), seg(20, 1)], gt, gt_info)
    assert (acc.tp.tolist(), acc.fp.tolist(), acc.fn.tolist()) == ([1, 0, 0], [0, 0, 0], [0, 0, 0])
    acc.add(pred, [seg(10, 2), seg(20, 1)], gt, gt_info)
    assert (acc.tp.tolist(), acc.fp.tolist(), acc.fn.tolist()) == ([2, 0, 0], [0, 1, 0], [0, 0, 0])
    res = acc.summarize()
    assert res["PQ-person"] == 100.0 and res["PQ-car"] == 0.0 and "PQ-sky" not in res
    assert res["PQ"] == pytest.approx(50.0)


def test_empty_is_nan_free_and_dict_categories():
    acc = PQAccumulator({1: True, 3: False})
    assert all(v == 0.0 for v in acc.summarize().values())
    z = np.zeros((3, 3), dtype=np.int64)
    acc.add(z, [], z, [])
    res = acc.summarize()
    assert set(res) == {"PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st"}
    assert not any(math.isnan(v) for v in res.values())


def test_merge_and_pickle():
    gt = cols(4, 8, 2, cols(0, 4, 1))
    images = [
        (cols(3, 8, 20, cols(0, 3, 10)), [seg(10, 1), seg(20, 2)], gt, [seg(1, 1), seg(2, 3)]),
        (gt, [seg(1, 1), seg(2, 3)], gt, [seg(1, 1), seg(2, 3)]),
        (cols(0, 8, 5), [seg(5, 3)], gt, [seg(1, 1), seg(2, 3)]),
    ]
    whole, left, right = PQAccumulator(CATS), PQAccumulator(CATS), PQAccumulator(CATS)
    for i, im in enumerate(images):
        whole.add(*im)
        (left if i == 0 else right).add(*im)
    merged = left.merge(pickle.loads(pickle.dumps(right)))
    assert merged.summarize() == pytest.approx(whole.summarize())
    assert merged.num_images == 3
    with pytest.raises(ValueError, match="merge"):
        merged.merge(PQAccumulator(CATS[:2]))


def test_bad_inputs():
    acc = PQAccumulator(CATS)
    gt = cols(0, 4, 1)
    with pytest.raises(ValueError, match=r"\(4, 8\) and \(4, 7\)"):
        acc.add(gt, [seg(1, 1)], gt[:, :7], [seg(1, 1)])
    with pytest.raises(ValueError, match=r"\[7\].*not in segments_info"):
        acc.add(cols(0, 2, 7), [], gt, [seg(1, 1)])
    with pytest.raises(ValueError, match="absent from the map"):
        acc.add(gt, [seg(1, 1), seg(9, 2)], gt, [seg(1, 1)])
    with pytest.raises(ValueError, match="unknown category_id 42"):
        acc.add(gt, [seg(1, 42)], gt, [seg(1, 1)])
    with pytest.raises(ValueError, match="Duplicate"):
        acc.add(gt, [seg(1, 1), seg(1, 2)], gt, [seg(1, 1)])
    assert acc.num_images == 0


def test_rgb_id_round_trip():
    rgb = np.array([[[1, 2, 3], [0, 0, 0]], [[255, 255, 255], [7, 0, 1]]], dtype=np.uint8)
    ids = panoptic_rgb_to_id(rgb)
    assert ids.tolist() == [[1 + 2 * 256 + 3 * 65536, 0], [256**3 - 1, 7 + 65536]]
    np.testing.assert_array_equal(panoptic_id_to_rgb(ids), rgb)
    with pytest.raises(ValueError, match="HxWx3"):
        panoptic_rgb_to_id(ids)


@pytest.fixture(scope="module")
def coco_panoptic():
    if not os.path.isdir(COCO_PANOPTIC):
        pytest.skip(f"{COCO_PANOPTIC} not found")
    from PIL import Image

    ann_dir = os.path.join(COCO_PANOPTIC, "annotations")
    with open(os.path.join(ann_dir, "panoptic_val2017.json")) as f:
        data = json.load(f)
    png_dir = os.path.join(ann_dir, "panoptic_val2017")
    maps = [
        panoptic_rgb_to_id(np.asarray(Image.open(os.path.join(png_dir, a["file_name"])).convert("RGB")))
        for a in data["annotations"]
    ]
    return data, maps


def test_coco_ground_truth_against_itself(coco_panoptic):
    data, maps = coco_panoptic
    acc = PQAccumulator(data["categories"])
    for ann, ids in zip(data["annotations"], maps):
        acc.add(ids, ann["segments_info"], ids, ann["segments_info"])
    res = acc.summarize()
    for key in ("PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st"):
        assert res[key] == pytest.approx(100.0), key
    assert acc.fp.sum() == 0 and acc.fn.sum() == 0


def test_coco_relabelled_things(coco_panoptic):
    """Relabel the first non-crowd thing of every image to another thing category: it becomes one FN for its category
    and one FP for the new one; every other segment stays a perfect TP, so SQ of matched segments stays 1."""
    data, maps = coco_panoptic
    thing_ids = [c["id"] for c in data["categories"] if c["isthing"]]
    acc = PQAccumulator(data["categories"])
    tp, fp, fn = Counter(), Counter(), Counter()
    for ann, ids in zip(data["annotations"], maps):
        pred_info = [dict(s) for s in ann["segments_info"]]
        victim = next((s for s in pred_info if s["category_id"] in thing_ids and not s["iscrowd"]), None)
        for s in ann["segments_info"]:
            if not s["iscrowd"]:
                tp[s["category_id"]] += 1
        if victim is not None:
            old = victim["category_id"]
            victim["category_id"] = thing_ids[(thing_ids.index(old) + 1) % len(thing_ids)]
            tp[old] -= 1
            fn[old] += 1
            fp[victim["category_id"]] += 1
        acc.add(ids, pred_info, ids, ann["segments_info"])
    assert sum(fp.values()) > 50
    np.testing.assert_array_equal(acc.fp, [fp[c] for c in acc.category_ids])
    np.testing.assert_array_equal(acc.fn, [fn[c] for c in acc.category_ids])
    np.testing.assert_array_equal(acc.tp, [tp[c] for c in acc.category_ids])

    seen = [c for c in thing_ids if tp[c] + fp[c] + fn[c] > 0]
    expected_pq = np.mean([tp[c] / (tp[c] + 0.5 * fp[c] + 0.5 * fn[c]) for c in seen])
    expected_sq = np.mean([1.0 if tp[c] else 0.0 for c in seen])
    res = acc.summarize()
    assert res["PQ_th"] < 100.0
    assert res["PQ_th"] == pytest.approx(100 * expected_pq)
    assert res["RQ_th"] == pytest.approx(100 * expected_pq)
    assert res["SQ_th"] == pytest.approx(100 * expected_sq)
    assert res["PQ_st"] == res["SQ_st"] == res["RQ_st"] == pytest.approx(100.0)
    n_th, n_st = acc.compute()["Things"]["n"], acc.compute()["Stuff"]["n"]
    assert res["PQ"] == pytest.approx((n_th * res["PQ_th"] + n_st * res["PQ_st"]) / (n_th + n_st))
