import numpy as np
import pytest

from wsis.core.boxes import mask_tight_box
from wsis.methods.boxcaseg.proxy_masks import merge_and_drop, proxy_box_agreement, threshold_proxy


def _rect(h, w, x0, y0, x1, y1):
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def test_threshold_proxy_min_max_normalises():
    prob = np.array([[0.2, 0.3], [0.35, 0.4]])  # normalised: 0, 0.5, 0.75, 1
    assert np.array_equal(threshold_proxy(prob), [[False, False], [True, True]])  # 0.5 itself is not above
    assert np.array_equal(threshold_proxy(prob, 0.4), [[False, True], [True, True]])
    assert not threshold_proxy(np.full((3, 3), 0.9)).any()  # constant map: no contrast → empty
    assert threshold_proxy(np.zeros((0, 4))).shape == (0, 4)
    with pytest.raises(ValueError):
        threshold_proxy(np.zeros(4))
    with pytest.raises(ValueError):
        threshold_proxy(np.array([[0.0, np.nan]]))


def test_tight_box_and_agreement():
    m = _rect(10, 10, 2, 3, 6, 8)
    assert np.array_equal(mask_tight_box(m), [2, 3, 6, 8])
    assert mask_tight_box(np.zeros((4, 4), dtype=bool)) is None
    assert proxy_box_agreement(m, [2, 3, 6, 8]) == 1.0
    assert proxy_box_agreement(m, [2, 3, 10, 8]) == pytest.approx(20 / 40)  # tight box 4×5 inside an 8×5 box
    assert proxy_box_agreement(m, [7, 0, 9, 2]) == 0.0
    assert proxy_box_agreement(np.zeros((10, 10), dtype=bool), [2, 3, 6, 8]) == 0.0
    with pytest.raises(ValueError):
        proxy_box_agreement(m, [0, 0, 1])
    with pytest.raises(ValueError):
        proxy_box_agreement(m[0], [0, 0, 1, 1])


def test_nested_boxes_small_object_wins_by_box_area():
    big = _rect(12, 12, 0, 0, 12, 12)
    small = _rect(12, 12, 3, 3, 7, 7)
    # a small mask is drawn first in the list: box areas, not the order, decide who wins
    masks = np.stack([small, big])
    boxes = np.array([[3, 3, 7, 7], [0, 0, 12, 12]], dtype=float)
    merged, agree, valid = merge_and_drop(masks, boxes)
    assert np.array_equal(merged[0], small) and np.array_equal(merged[1], big & ~small)
    assert np.array_equal(agree, [1.0, 1.0]) and valid.tolist() == [True, True]
    # box areas decide, not mask areas: a big mask with a small box wins over a small mask with a big box
    merged, _, _ = merge_and_drop(np.stack([small, big]), np.array([[0, 0, 12, 12], [3, 3, 7, 7]], dtype=float),
                                  drop_threshold=0)
    assert np.array_equal(merged[1], big) and not merged[0].any()
    unmerged, _, _ = merge_and_drop(masks, boxes, merge=False)
    assert np.array_equal(unmerged, masks)


def test_equal_box_areas_later_index_wins():
    a = _rect(6, 6, 0, 0, 4, 4)
    b = _rect(6, 6, 2, 2, 6, 6)
    boxes = np.array([[0, 0, 4, 4], [2, 2, 6, 6]], dtype=float)
    merged, agree, valid = merge_and_drop(np.stack([a, b]), boxes)
    assert np.array_equal(merged[1], b) and np.array_equal(merged[0], a & ~b)
    assert merged[0].sum() == 12 and agree.tolist() == [1.0, 1.0]  # the L-shape still spans its box


def test_drop_by_proxy_box_agreement():
    h = w = 20
    good = _rect(h, w, 0, 0, 10, 10)
    half = _rect(h, w, 10, 10, 15, 20)  # covers half of its box [10, 20]²
    masks = np.stack([good, half, np.zeros((h, w), dtype=bool)])
    boxes = np.array([[0, 0, 10, 10], [10, 10, 20, 20], [0, 10, 5, 15]], dtype=float)
    merged, agree, valid = merge_and_drop(masks, boxes)
    assert agree.tolist() == [1.0, 0.5, 0.0]
    assert valid.tolist() == [True, False, False]
    _, _, keep_all = merge_and_drop(masks, boxes, drop_threshold=0.0)
    assert keep_all.tolist() == [True, True, False]  # drop off, but an empty mask is never valid
    _, _, lenient = merge_and_drop(masks, boxes, drop_threshold=0.4)
    assert lenient.tolist() == [True, True, False]


def test_agreement_exactly_at_threshold_is_dropped():
    m = _rect(1, 20, 0, 0, 19, 1)  # tight box [0, 19] × [0, 1] inside the box [0, 20] × [0, 1]: IoU = 19/20
    _, agree, valid = merge_and_drop(m[None], np.array([[0, 0, 20, 1]], dtype=float))
    assert agree[0] == 0.95 and not valid[0]
    _, _, valid = merge_and_drop(m[None], np.array([[0, 0, 20, 1]], dtype=float), drop_threshold=0.949)
    assert valid[0]


def test_merge_and_drop_empty_and_bad_inputs():
    merged, agree, valid = merge_and_drop(np.zeros((0, 5, 6), dtype=bool), np.zeros((0, 4)))
    assert merged.shape == (0, 5, 6) and agree.shape == valid.shape == (0,) and valid.dtype == bool
    with pytest.raises(ValueError):
        merge_and_drop(np.zeros((5, 6), dtype=bool), np.zeros((0, 4)))
    with pytest.raises(ValueError):
        merge_and_drop(np.zeros((2, 5, 6), dtype=bool), np.zeros((3, 4)))
    with pytest.raises(ValueError):
        merge_and_drop(np.zeros((1, 5, 6), dtype=bool), np.array([[0, 0, np.nan, 1]]))


def test_agreement_compares_with_the_pixel_extent_the_mask_was_pasted_into():
    # a mask that fills exactly the pixels of a fractional box is a perfect proxy (the two cases scored
    # 0.903 and 0.952 against the float box, the first one dropped at 0.95)
    from wsis.core.boxes import pixel_extent

    for box in ([10.3, 5.0, 25.5, 20.2], [0.4, 3.0, 20.4, 23.0]):
        x0, y0, x1, y1 = pixel_extent(box, 30, 40)
        m = _rect(30, 40, x0, y0, x1, y1)
        assert proxy_box_agreement(m, box) == 1.0
        _, agree, valid = merge_and_drop(m[None], np.array([box]))
        assert agree[0] == 1.0 and valid[0]
    # one pixel column short of the extent [10, 26) x [5, 20): IoU 15/16 with it
    assert proxy_box_agreement(_rect(30, 40, 10, 5, 25, 20), [10.3, 5.0, 25.5, 20.2]) == pytest.approx(15 / 16)
