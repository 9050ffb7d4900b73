import pickle

import numpy as np
import pytest

from wsis.core.masks import to_rle
from wsis.evaluation.pseudo_quality import (
    PseudoInstanceQualityAccumulator,
    PseudoPixelQualityAccumulator,
    masked_iou,
)


def box(y0, y1, x0, x1, shape=(4, 4)):
    m = np.zeros(shape, dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


P = box(0, 2, 0, 2)  # 4 px
G = box(0, 2, 1, 3)  # 4 px, 2 shared with P
EMPTY = np.zeros((4, 4), dtype=bool)


def test_masked_iou_hand_computed():
    assert masked_iou(P, G) == pytest.approx(2 / 6)
    assert masked_iou(P, P) == 1.0
    assert masked_iou(P, box(2, 4, 2, 4)) == 0.0


def test_ignore_region_is_excluded_from_both_masks():
    col0 = box(0, 4, 0, 1)
    assert masked_iou(P, G, col0) == pytest.approx(2 / 4)  # P loses 2 px: inter 2, union 4
    assert masked_iou(P, G, col0 | box(0, 4, 2, 3)) == 1.0  # only the shared column remains
    acc = PseudoInstanceQualityAccumulator()
    assert acc.add(P, G, 1, ignore=col0) == pytest.approx(0.5)
    assert acc.add(P, G, 1) == pytest.approx(1 / 3)


def test_empty_masks():
    acc = PseudoInstanceQualityAccumulator()
    assert acc.add(EMPTY, EMPTY, 1) == 1.0  # two empty masks agree
    assert acc.add(P, EMPTY, 1) == 0.0
    assert acc.add(P, P, 1, ignore=box(0, 2, 0, 2)) == 1.0  # everything ignored: empty vs empty
    res = acc.summarize()
    assert res["num_empty_gt"] == 3 and res["num_instances"] == 3
    assert res["mean_iou"] == pytest.approx(2 / 3)


def test_invalid_masks():
    acc = PseudoInstanceQualityAccumulator()
    acc.add(P, P, 1)
    assert acc.add(None, G, 1, valid=False) is None
    res = acc.summarize()
    assert (res["num_instances"], res["num_invalid"], res["mean_iou"]) == (1, 1, 1.0)

    acc = PseudoInstanceQualityAccumulator(invalid_as_zero=True)
    acc.add(P, P, 1)
    assert acc.add(P, G, 1, valid=False) == 0.0
    res = acc.summarize()
    assert (res["num_instances"], res["num_invalid"], res["mean_iou"], res["iou@0.5"]) == (2, 1, 0.5, 0.5)
    with pytest.raises(ValueError, match="valid=False"):
        acc.add(None, G, 1)


def test_class_mean_vs_mean_and_thresholds():
    acc = PseudoInstanceQualityAccumulator()
    half = box(0, 1, 0, 2)  # IoU with P = 2/4
    for pseudo, cat in ((P, 1), (half, 1), (EMPTY, 1), (P, 2)):  # class 1: 1, .5, 0; class 2: 1
        acc.add(pseudo, P, cat)
    res = acc.summarize()
    assert res["mean_iou"] == pytest.approx(2.5 / 4)
    assert res["class_mean_iou"] == pytest.approx((0.5 + 1.0) / 2)  # BoxCaseg mIoU*
    assert res["iou@0.5"] == pytest.approx(3 / 4)  # IoU of exactly 0.5 counts
    assert res["iou@0.75"] == pytest.approx(2 / 4)
    assert acc.per_class_iou() == {1: pytest.approx(0.5), 2: 1.0}


def test_instance_empty_accumulator_and_merge():
    assert PseudoInstanceQualityAccumulator().summarize() == {
        "mean_iou": 0.0, "class_mean_iou": 0.0, "iou@0.5": 0.0, "iou@0.75": 0.0,
        "num_instances": 0, "num_invalid": 0, "num_empty_gt": 0,
    }
    whole, left, right = (PseudoInstanceQualityAccumulator() for _ in range(3))
    pairs = [(P, G, 1, True), (P, P, 2, True), (None, P, 2, False), (EMPTY, EMPTY, 3, True)]
    for i, (p, g, c, v) in enumerate(pairs):
        whole.add(p, g, c, valid=v)
        (left if i < 2 else right).add(p, g, c, valid=v)
    assert left.merge(pickle.loads(pickle.dumps(right))).summarize() == whole.summarize()
    with pytest.raises(ValueError, match="merge"):
        left.merge(PseudoInstanceQualityAccumulator(invalid_as_zero=True))


def test_instance_rle_and_polygon_inputs_and_shape_errors():
    acc = PseudoInstanceQualityAccumulator()
    assert acc.add(to_rle(P), to_rle(G), 1) == pytest.approx(1 / 3)
    assert acc.add(P, [[0, 0, 2, 0, 2, 2, 0, 2]], 1) == 1.0  # polygon of P (pixel corners)
    with pytest.raises(ValueError, match=r"\(4, 4\).*\(3, 3\)"):
        acc.add(P, np.zeros((3, 3), dtype=bool), 1)
    with pytest.raises(ValueError, match="one shape"):
        acc.add(P, G, 1, ignore=np.zeros((2, 2), dtype=bool))


IG = 255
GT_MAP = np.array([[0, 0, 1, 1], [IG, 2, 2, 1]])
PSEUDO_MAP = np.array([[0, IG, 1, 2], [0, 2, IG, 1]])


def test_pixel_precision_recall_with_ignore():
    acc = PseudoPixelQualityAccumulator(3, class_names=["bg", "a", "b"])
    acc.add(PSEUDO_MAP, GT_MAP)
    res = acc.summarize()
    # 7 evaluated pixels (GT void dropped), 5 labelled, 4 of them right; 5 GT-foreground pixels, 3 recovered
    assert (res["num_pixels"], res["num_labelled"], res["num_gt_foreground"]) == (7, 5, 5)
    assert res["precision"] == pytest.approx(4 / 5)
    assert res["recall"] == pytest.approx(3 / 5)
    assert res["fraction_ignored"] == pytest.approx(2 / 7)
    assert (res["iou-bg"], res["iou-a"], res["iou-b"]) == (1.0, pytest.approx(2 / 3), 0.5)
    assert res["miou"] == pytest.approx((1 + 2 / 3 + 0.5) / 3)


def test_pixel_without_background_class():
    acc = PseudoPixelQualityAccumulator(3, background_id=None)
    acc.add(PSEUDO_MAP, GT_MAP)
    assert acc.summarize()["recall"] == pytest.approx(4 / 7)


def test_pixel_merge_empty_and_errors():
    whole, left, right = (PseudoPixelQualityAccumulator(3) for _ in range(3))
    for i, (p, g) in enumerate([(PSEUDO_MAP, GT_MAP), (GT_MAP, GT_MAP), (np.full((2, 4), IG), GT_MAP)]):
        whole.add(p, g)
        (left if i == 0 else right).add(p, g)
    assert left.merge(pickle.loads(pickle.dumps(right))).summarize() == whole.summarize()

    empty = PseudoPixelQualityAccumulator(3)
    empty.add(np.full((2, 2), IG), np.full((2, 2), IG))
    res = empty.summarize()
    assert res["precision"] == res["recall"] == res["fraction_ignored"] == res["miou"] == 0.0

    acc = PseudoPixelQualityAccumulator(3)
    with pytest.raises(ValueError, match=r"\[7\]"):
        acc.add(np.full((2, 4), 7), GT_MAP)
    with pytest.raises(ValueError, match="one shape"):
        acc.add(PSEUDO_MAP[:, :3], GT_MAP)
    with pytest.raises(ValueError, match="collides"):
        PseudoPixelQualityAccumulator(300)
    with pytest.raises(ValueError, match="merge"):
        acc.merge(PseudoPixelQualityAccumulator(4))
