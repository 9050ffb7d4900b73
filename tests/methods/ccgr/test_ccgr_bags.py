"""CCGR's whole-image proposals and the bag job: Selective-Search-style boxes, the cue foreground, bags of a tiny
set written as a bag file (peaks thresholded by ``min_peak``)."""
import cv2
import numpy as np
import pytest

from wsis.methods.ccgr.bag_file import read_bag_file
from wsis.methods.ccgr.bag_job import cue_foreground, make_bags
from wsis.methods.ccgr.proposals import selective_search_boxes


def _image(tmp_path, k=1):
    img = np.full((64, 64, 3), (40, 160, 40), np.uint8)  # grass
    img[8:28, 10:30] = (30, 30, 220)                    # a red square
    img[36:60, 34:58] = (220, 60, 30)                   # a blue square
    path = str(tmp_path / f"{k}.png")
    cv2.imwrite(path, img)
    return img, path


def test_selective_search_boxes_find_the_objects(tmp_path):
    img, _ = _image(tmp_path)
    boxes, scores = selective_search_boxes(img)
    found = {tuple(b) for b in boxes.astype(int).tolist()}
    assert (10, 8, 30, 28) in found and (34, 36, 58, 60) in found and (0, 0, 64, 64) in found
    assert (np.diff(scores) <= 0).all() and len(found) == len(boxes)  # sorted, no duplicate
    assert (boxes[:, 2:] - boxes[:, :2] >= 4).all()
    assert len(selective_search_boxes(img, min_box=65)[0]) == 0


def test_cue_foreground():
    fg = cue_foreground(np.array([[[0.2, 1.5]], [[0.6, -1.0]]], np.float32), (2, 4))
    assert fg.shape == (2, 4) and fg.min() >= 0 and fg.max() == 1.0 and fg[0, 0] == pytest.approx(0.6)
    assert not cue_foreground(np.zeros((0, 3, 3)), (5, 5)).any()


class _Cues:
    """A cue store's interface: one image whose class-2 map peaks on each square, class 4 weakly."""

    def __init__(self):
        cams = np.zeros((2, 16, 16), np.float32)
        cams[0, 4, 4], cams[0, 11, 11] = 1.0, 0.9    # class 2: both squares (stride 4)
        cams[0, 1, 14] = 0.3                           # class 2: a weak peak on the grass (below half the max)
        cams[1, 2, 12] = 0.2                           # class 4: its only peak
        self.maps = {1: (np.array([2, 4]), cams)}
        self.entries = {1: {"stride": 4}}

    def __contains__(self, image_id):
        return image_id in self.maps

    def __getitem__(self, image_id):
        return self.maps[image_id]


def test_make_bags_writes_a_bag_file(tmp_path):
    _, path = _image(tmp_path)
    dicts = [{"image_id": 1, "file_name": path, "height": 64, "width": 64, "image_labels": [2, 4]},
             {"image_id": 2, "file_name": path, "height": 64, "width": 64, "image_labels": []}]
    out = str(tmp_path / "bags.pkl")
    done, skipped = make_bags(dicts, _Cues(), out, min_peak=0.5, progress=False)
    assert [i for i, _ in skipped] == [2] and list(done) == [1]
    bags = read_bag_file(out)[1]
    assert bags["bag_labels"].tolist() == [2, 2, 4]  # the weak class-2 peak is out; class 4's is its map's max
    for b in range(3):
        own = bags["boxes"][bags["bag_index"] == b]
        assert 1 <= len(own) <= 10
    first = bags["boxes"][bags["bag_index"] == 0]
    assert ((first[:, 0] <= 18) & (first[:, 2] > 18)).all()  # each holds the peak at (18, 18)
    assert not ((first[:, 0] <= 46) & (first[:, 2] > 46) & (first[:, 1] <= 46) & (first[:, 3] > 46)).any()
    import torch

    from wsis.methods.ccgr.peaks import find_peaks

    cams = torch.from_numpy(_Cues().maps[1][1][:1])
    assert len(find_peaks(cams, [2], 4, min_peak=0.0)[0]) == 3 and len(find_peaks(cams, [2], 4, min_peak=0.5)[0]) == 2
