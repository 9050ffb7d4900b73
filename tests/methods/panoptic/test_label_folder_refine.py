"""Panoptic label folders (attach, index maps, the writer's round trip) and the §3.4 next-round rules."""
import json

import numpy as np
import pytest

from wsis.methods.panoptic.label_folder import (MAX_SEGMENTS, attach_panoptic_labels, panoptic_index_map,
                                                read_panoptic_ids)
from wsis.methods.panoptic.label_job import write_panoptic_json, write_panoptic_label
from wsis.methods.panoptic.refine import refine_panoptic_label

CATEGORIES = [{"id": 1, "name": "ball", "isthing": 1}, {"id": 90, "name": "grass", "isthing": 0}]
ISTHING = {0: True, 1: False}


def _label_folder(tmp_path):
    """Two images: 1 has a ball (segment 1) and grass (segment 2, a crowd flag on nothing), 2 only grass."""
    ids1 = np.zeros((6, 8), np.int32)
    ids1[1:4, 1:4] = 1
    ids1[:, 5:] = 2
    ids2 = np.full((6, 8), 1, np.int32)
    dicts = [{"image_id": 1, "file_name": "a/1.jpg", "height": 6, "width": 8},
             {"image_id": 2, "file_name": "a/2.jpg", "height": 6, "width": 8}]
    write_panoptic_label(str(tmp_path), 1, ids1, [{"id": 1, "category_id": 0, "area": 9},
                                                  {"id": 2, "category_id": 1, "area": 18, "iscrowd": 1}])
    write_panoptic_label(str(tmp_path), 2, ids2, [{"id": 1, "category_id": 1, "area": 48}])
    write_panoptic_json(dicts, CATEGORIES, str(tmp_path))
    return dicts, ids1, ids2


def test_writer_round_trip_and_attach(tmp_path):
    dicts, ids1, ids2 = _label_folder(tmp_path)
    out = attach_panoptic_labels(dicts, str(tmp_path), {1: 0, 90: 1})
    assert [d["pan_seg_file_name"] for d in out] == [str(tmp_path / "1.png"), str(tmp_path / "2.png")]
    assert out[0]["segments_info"] == [{"id": 1, "category_id": 0, "iscrowd": 0},
                                       {"id": 2, "category_id": 1, "iscrowd": 1}]
    np.testing.assert_array_equal(read_panoptic_ids(out[0]["pan_seg_file_name"]), ids1)
    np.testing.assert_array_equal(read_panoptic_ids(out[1]["pan_seg_file_name"]), ids2)
    with open(tmp_path / "panoptic.json") as f:
        ann = json.load(f)["annotations"][0]["segments_info"][0]
    assert ann["category_id"] == 1 and ann["bbox"] == [1.0, 1.0, 3.0, 3.0]
    assert "pan_seg_file_name" not in dicts[0]  # copies


def test_attach_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="panoptic.json"):
        attach_panoptic_labels([], str(tmp_path), {})
    dicts, _, _ = _label_folder(tmp_path)
    extra = dicts + [{"image_id": 7, "file_name": "a/7.jpg"}]
    with pytest.raises(ValueError, match=r"image id 7 \(a/7.jpg\)"):
        attach_panoptic_labels(extra, str(tmp_path), {1: 0, 90: 1})
    assert len(attach_panoptic_labels(extra, str(tmp_path), {1: 0, 90: 1}, require_all=False)) == 2
    with pytest.raises(ValueError, match="category id 90 is not a category"):
        attach_panoptic_labels(dicts, str(tmp_path), {1: 0})


def test_index_map():
    ids = np.array([[0, 5, 5], [9, 9, 7]])
    index, classes, crowd = panoptic_index_map(ids, [{"id": 9, "category_id": 3},
                                                     {"id": 5, "category_id": 1, "iscrowd": 1}])
    np.testing.assert_array_equal(index, [[255, 1, 1], [0, 0, 255]])  # id 7 is in no segment: void
    np.testing.assert_array_equal(classes, [3, 1])
    np.testing.assert_array_equal(crowd, [False, True])
    assert index.dtype == np.uint8
    with pytest.raises(ValueError, match="at most"):
        panoptic_index_map(ids, [{"id": k, "category_id": 0} for k in range(1, MAX_SEGMENTS + 2)])
    with pytest.raises(ValueError, match="void"):
        panoptic_index_map(ids, [{"id": 0, "category_id": 0}])


def test_refine_rules():
    # 6 × 8 output: a ball segment (class 0) that spills out of its box, a second ball segment with no box of its
    # class, grass (tagged) and sky (class 2, untagged).
    isthing = {0: True, 1: False, 2: False, 3: True}
    ids = np.zeros((6, 8), np.int32)
    ids[0:4, 0:4] = 1   # ball, its box covers columns 0-1 only
    ids[4:6, 0:4] = 2   # sky: untagged
    ids[:, 4:6] = 3     # grass: tagged
    ids[:, 6:8] = 4     # class 3 (a thing) without a box of its class
    segments = [{"id": 1, "category_id": 0, "score": 0.9}, {"id": 2, "category_id": 2},
                {"id": 3, "category_id": 1}, {"id": 4, "category_id": 3}]
    boxes = [[0.0, 0.0, 2.0, 4.0], [4.0, 0.0, 8.0, 6.0]]  # a ball box; a box of class 0 over the class-3 segment
    out, kept = refine_panoptic_label(ids, segments, boxes, [0, 0], tags=[1, 0], isthing=isthing)
    expect = np.zeros((6, 8), np.int32)
    expect[0:4, 0:2] = 1
    expect[:, 4:6] = 2
    np.testing.assert_array_equal(out, expect)
    assert [(s["id"], s["category_id"], s["isthing"], s["area"]) for s in kept] == [(1, 0, True, 8), (2, 1, False, 12)]
    assert kept[0]["score"] == 0.9  # other keys are kept


def test_refine_empty_and_errors():
    out, kept = refine_panoptic_label(np.zeros((3, 3), np.int32), [], np.zeros((0, 4)), [], [], {})
    assert kept == [] and not out.any()
    with pytest.raises(ValueError, match="2 boxes for 1 classes"):
        refine_panoptic_label(np.zeros((3, 3)), [], np.zeros((2, 4)), [0], [], {0: True})
    with pytest.raises(ValueError, match="class 5 is neither"):
        refine_panoptic_label(np.ones((3, 3)), [{"id": 1, "category_id": 5}], np.zeros((0, 4)), [], [], {0: True})
