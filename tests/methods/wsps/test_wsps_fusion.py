"""WSPS §3.2 fusion and ignore rules on small synthetic label maps with known answers."""
import numpy as np
import pytest

from wsis.methods.wsps.fusion import IGNORE, box_states, fuse
from wsis.methods.wsps.fusion import BG, FG, UNSURE
from wsis.pseudo.records import image_record
from wsis.core.semantic import semantic_from_record


def states_of(box, fg=None, unsure=None):
    """States of a box (x0, y0, x1, y1): FG / UNSURE on the given image-coordinate slices, BG elsewhere."""
    x0, y0, x1, y1 = box
    s = np.full((y1 - y0, x1 - x0), BG, dtype=np.uint8)
    for region, value in ((fg, FG), (unsure, UNSURE)):
        if region is not None:
            ys, xs = region
            s[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0] = value
    return s


def full_states(box, value):
    x0, y0, x1, y1 = box
    return np.full((y1 - y0, x1 - x0), value, dtype=np.uint8)


def test_box_states_agreement():
    a = np.array([[1, 1, 0, 0]], dtype=bool)
    b = np.array([[1, 0, 1, 0]], dtype=bool)
    assert box_states(a, b).tolist() == [[FG, UNSURE, UNSURE, BG]]
    with pytest.raises(ValueError, match="one shape"):
        box_states(a, b[:, :3])


def test_single_box_known_answer():
    box = (2, 2, 8, 8)
    s = states_of(box, fg=(slice(3, 7), slice(3, 7)), unsure=(slice(2, 3), slice(2, 8)))  # top row unsure
    f = fuse((10, 10), [box], [4], [s])
    expect = np.zeros((10, 10), dtype=np.uint8)
    expect[3:7, 3:7] = 5
    expect[2, 2:8] = IGNORE  # disagreement inside the box → ignore; both-background inside the box → background
    assert f.semantic.tolist() == expect.tolist()
    assert f.masks.shape == (1, 10, 10) and f.masks[0].sum() == 16 and f.masks[0, 3:7, 3:7].all()
    assert f.image_ignore.sum() == 6 and not f.instance_ignore.any()


def test_same_class_overlap_is_instance_ignore():
    a, b = (0, 0, 6, 6), (4, 0, 10, 6)
    f = fuse((6, 10), [a, b], [1, 1], [full_states(a, FG), full_states(b, FG)])
    assert (f.semantic[:, :10] == 2).all(), "the class is certain where two boxes of one class overlap"
    assert not f.masks[:, :, 4:6].any() and f.instance_ignore[0, :, 4:6].all() and f.instance_ignore[1, :, 4:6].all()
    assert f.masks[0, :, :4].all() and f.masks[1, :, 6:].all()
    assert not f.image_ignore.any()
    assert (f.masks.sum(0) <= 1).all()


def test_different_classes_smallest_wins_or_ignore():
    big, small = (0, 0, 8, 8), (4, 4, 8, 8)  # small box (16 px) in the big one's corner (64 px)
    states = [full_states(big, FG), full_states(small, FG)]
    f = fuse((8, 8), [big, small], [0, 3], states)
    assert (f.semantic[4:, 4:] == 4).all() and f.masks[1, 4:, 4:].all()
    assert not f.masks[0, 4:, 4:].any() and f.masks[0].sum() == 64 - 16
    assert not f.instance_ignore.any()
    g = fuse((8, 8), [big, small], [0, 3], states, cross_class="ignore")
    assert (g.semantic[4:, 4:] == IGNORE).all() and not g.masks[:, 4:, 4:].any()
    assert g.masks[0].sum() == 64 - 16
    with pytest.raises(ValueError, match="cross_class"):
        fuse((8, 8), [big], [0], states[:1], cross_class="largest")


def test_nested_boxes():
    outer, inner = (0, 0, 10, 10), (3, 3, 6, 6)
    # same class nested, both FG: the inner region is ambiguous between the two instances
    f = fuse((10, 10), [outer, inner], [2, 2], [full_states(outer, FG), full_states(inner, FG)])
    assert f.instance_ignore[0, 3:6, 3:6].all() and f.instance_ignore[1, 3:6, 3:6].all()
    assert not f.masks[1].any() and (f.semantic == 3).all()
    # the smaller box is unsure: it decides → ignore, even where the larger one is sure
    f = fuse((10, 10), [outer, inner], [2, 5], [full_states(outer, FG), full_states(inner, UNSURE)])
    assert (f.semantic[3:6, 3:6] == IGNORE).all() and not f.masks[0, 3:6, 3:6].any()
    # the smaller box says background: it has no opinion there, the larger box's FG stands
    f = fuse((10, 10), [outer, inner], [2, 5], [full_states(outer, FG), full_states(inner, BG)])
    assert (f.semantic == 3).all() and f.masks[0].all() and not f.masks[1].any()


def test_equal_areas_later_box_decides():
    a, b = (0, 0, 4, 4), (2, 0, 6, 4)
    f = fuse((4, 6), [a, b], [0, 1], [full_states(a, FG), full_states(b, UNSURE)])
    assert (f.semantic[:, 2:] == IGNORE).all()
    f = fuse((4, 6), [a, b], [0, 1], [full_states(a, UNSURE), full_states(b, FG)])
    assert (f.semantic[:, 2:] == 2).all() and (f.semantic[:, :2] == IGNORE).all()


def test_crowd_region_is_ignored_unless_claimed():
    box, crowd = (0, 0, 4, 4), (2, 0, 8, 4)
    f = fuse((4, 8), [box], [0], [full_states(box, FG)], crowd_boxes=[crowd])
    assert (f.semantic[:, :4] == 1).all() and (f.semantic[:, 4:] == IGNORE).all()


def test_no_boxes_and_bad_shapes():
    f = fuse((3, 4), [], [], [])
    assert (f.semantic == 0).all() and f.masks.shape == (0, 3, 4)
    with pytest.raises(ValueError, match="box 0"):
        fuse((5, 5), [(0, 0, 2, 2)], [0], [np.zeros((3, 3), np.uint8)])
    with pytest.raises(ValueError, match="1 boxes, 2 classes"):
        fuse((5, 5), [(0, 0, 2, 2)], [0, 1], [np.zeros((2, 2), np.uint8)])


def test_semantic_map_round_trips_through_the_store_record():
    big, small, same = (0, 0, 8, 8), (4, 4, 8, 8), (6, 0, 10, 4)
    states = [states_of(big, fg=(slice(0, 6), slice(0, 8)), unsure=(slice(6, 8), slice(0, 4))),
              full_states(small, FG), full_states(same, FG)]
    f = fuse((8, 10), [big, small, same], [0, 3, 0], states)
    anns = [{"id": i + 1, "category_id": c, "bbox": [0, 0, 1, 1]} for i, c in enumerate([0, 3, 0])]
    rec = image_record({"image_id": 1, "height": 8, "width": 10}, anns, f.masks, f.instance_ignore, f.image_ignore)
    assert semantic_from_record(rec).tolist() == f.semantic.tolist()
    assert [i["valid"] for i in rec["instances"]] == [True, True, True]
