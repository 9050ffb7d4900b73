"""Semantic label maps as files: true maps rasterised from instance masks and panoptic segments, attached to dicts."""
import cv2
import numpy as np
import pytest

from wsis.core.semantic import IGNORE_LABEL
from wsis.data.semantic_labels import (
    SemanticLabelError,
    attach_semantic_labels,
    semantic_classes,
    semantic_from_panoptic,
    semantic_ground_truth,
    write_semantic_ground_truth,
)


def _dict(image_id=3):
    big = [[0, 0, 8, 0, 8, 6, 0, 6]]  # 8x6 box: class 1
    small = [[2, 2, 5, 2, 5, 4, 2, 4]]  # inside it: class 0 (smaller wins)
    crowd = [[8, 0, 10, 0, 10, 2, 8, 2]]
    return {"image_id": image_id, "file_name": f"{image_id}.jpg", "height": 8, "width": 10, "annotations": [
        {"id": 1, "category_id": 1, "segmentation": big, "iscrowd": 0},
        {"id": 2, "category_id": 0, "segmentation": small, "iscrowd": 0},
        {"id": 3, "category_id": 2, "segmentation": crowd, "iscrowd": 1}]}


def test_ground_truth_smallest_wins_and_crowd_is_ignored():
    gt = semantic_ground_truth(_dict())
    assert gt.dtype == np.uint8 and gt.shape == (8, 10)
    expected = np.zeros((8, 10), np.uint8)
    expected[0:6, 0:8] = 2
    expected[2:4, 2:5] = 1
    expected[0:2, 8:10] = IGNORE_LABEL
    np.testing.assert_array_equal(gt, expected)
    assert semantic_classes(["a", "b"]) == ["background", "a", "b"]


def test_ground_truth_needs_masks():
    d = _dict()
    del d["annotations"][0]["segmentation"]
    with pytest.raises(SemanticLabelError, match="annotation id 1 of image id 3"):
        semantic_ground_truth(d)


def test_write_resume_and_attach(tmp_path):
    dicts = [_dict(3), _dict(4)]
    out = write_semantic_ground_truth(dicts, str(tmp_path), progress=False)
    assert [d["sem_seg_file_name"] for d in out] == [str(tmp_path / "3.png"), str(tmp_path / "4.png")]
    assert "sem_seg_file_name" not in dicts[0]  # copies
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "3.png"), cv2.IMREAD_UNCHANGED), semantic_ground_truth(dicts[0]))
    # an existing map is kept (a killed run resumes): overwrite one with zeros, it stays
    cv2.imwrite(str(tmp_path / "4.png"), np.zeros((8, 10), np.uint8))
    write_semantic_ground_truth(dicts, str(tmp_path), progress=False)
    assert not cv2.imread(str(tmp_path / "4.png"), cv2.IMREAD_UNCHANGED).any()
    (tmp_path / "4.png").unlink()
    with pytest.raises(SemanticLabelError, match="image id 4"):
        attach_semantic_labels(dicts, str(tmp_path))
    assert [d["image_id"] for d in attach_semantic_labels(dicts, str(tmp_path), require_all=False)] == [3]


def test_panoptic_to_semantic():
    ids = np.array([[0, 5, 5], [7, 7, 9]])
    info = [{"id": 5, "category_id": 1}, {"id": 7, "category_id": 200}, {"id": 9, "category_id": 1, "iscrowd": 1}]
    out = semantic_from_panoptic(ids, info, {1: 0, 200: 132})
    np.testing.assert_array_equal(out, [[255, 0, 0], [132, 132, 255]])
    with pytest.raises(SemanticLabelError):
        semantic_from_panoptic(ids, info, {1: 0, 200: 300})
