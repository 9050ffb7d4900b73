"""CCGR's whole-image proposals and the bag job: Selective-Search-style boxes, the cue foreground, bags of a tiny
set written as a bag file (peaks thresholded by ``min_peak``)."""
import cv2
import numpy as np
import pytest

from wsis.methods.ccgr.bag_file import read_bag_file
from wsis.methods.ccgr.bag_job import cue_foreground, label_foreground, make_bags
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


def test_label_foreground():
    label = np.array([[0, 3], [255, 1]], np.uint8)
    assert label_foreground(label, (2, 2)).tolist() == [[0.0, 1.0], [0.5, 1.0]]
    big = label_foreground(label, (4, 6))
    assert big.shape == (4, 6) and big.dtype == np.float32 and big[0, 0] == 0 and big[3, 5] == 1 and big[3, 0] == 0.5
    assert label_foreground(label, (2, 2), ignore_value=0.0)[1, 0] == 0.0
    with pytest.raises(ValueError, match="is .H, W."):
        label_foreground(np.zeros((2, 2, 3), np.uint8), (2, 2))


def _square_labels(tmp_path):
    """A label folder whose map of image 1 labels the red square class 2 (3 = class + 1), the rest background."""
    labels = tmp_path / "labels"
    labels.mkdir()
    label = np.zeros((64, 64), np.uint8)
    label[8:28, 10:30] = 3
    cv2.imwrite(str(labels / "1.png"), label)
    return labels, label


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


def test_make_bags_foreground_labels_rank_by_the_label_map(tmp_path):
    """Eq. 4's O from a semantic label folder (B_S = 0): the red square labelled, everything else background, so the
    best proposal of the square's peak is one with no background pixel, inside the square; an image without its map
    is skipped with a reason naming it; the option needs cues."""
    _, path = _image(tmp_path)
    labels, label = _square_labels(tmp_path)
    dicts = [{"image_id": 1, "file_name": path, "height": 64, "width": 64, "image_labels": [2, 4]},
             {"image_id": 3, "file_name": path, "height": 64, "width": 64, "image_labels": [2]}]
    cues = _Cues()
    cues.maps[3], cues.entries[3] = cues.maps[1], cues.entries[1]
    out = str(tmp_path / "bags.pkl")
    done, skipped = make_bags(dicts, cues, out, min_peak=0.5, progress=False, foreground_labels=str(labels),
                              objectness="none")
    assert list(done) == [1] and skipped[0][0] == 3 and "3.png" in skipped[0][1] and "image id 3" in skipped[0][1]
    bags = read_bag_file(out)[1]
    best = bags["boxes"][bags["bag_index"] == 0][0]
    assert best[0] >= 10 and best[1] >= 8 and best[2] <= 30 and best[3] <= 28
    cv2.imwrite(str(labels / "1.png"), np.where(label > 0, 0, 3).astype(np.uint8))  # the inverse: grass labelled
    make_bags(dicts[:1], _Cues(), out, min_peak=0.5, progress=False, foreground_labels=str(labels), objectness="none")
    best = read_bag_file(out)[1]["boxes"][0]
    assert (best[2] - best[0]) * (best[3] - best[1]) > 20 * 20  # more grass than square: larger than the square
    cv2.imwrite(str(labels / "1.png"), np.zeros((32, 64), np.uint8))  # another image's map: skipped, said why
    done, skipped = make_bags(dicts[:1], _Cues(), out, progress=False, foreground_labels=str(labels))
    assert not done and "is 64x32, the image 64x64" in skipped[0][1] and "image id 1" in skipped[0][1]
    with pytest.raises(ValueError, match="needs cues"):
        make_bags(dicts, None, out, predictions={}, foreground_labels=str(labels), progress=False)


def test_make_bags_objectness(tmp_path):
    """B_S of Eq. 4 from given proposals: "contrast" (the default) stores O's centre-context gap and ranks the red
    square's own box first, "none" stores 0 and ranks a part inside the square first (no background pixel),
    "proposals" stores the file's scores; an unknown kind is refused."""
    _, path = _image(tmp_path)
    labels, label = _square_labels(tmp_path)
    boxes = np.array([[14, 12, 26, 24], [10, 8, 30, 28], [6, 4, 34, 32]], np.float32)  # part, square, larger
    proposals = {1: (boxes, np.array([0.9, 0.1, 0.5], np.float32))}
    dicts = [{"image_id": 1, "file_name": path, "height": 64, "width": 64, "image_labels": [2]}]
    out = str(tmp_path / "bags.pkl")
    got = {}
    for kind in ("contrast", "none", "proposals"):
        make_bags(dicts, _Cues(), out, proposals, min_peak=0.5, progress=False, foreground_labels=str(labels),
                  **({} if kind == "contrast" else {"objectness": kind}))
        bag = read_bag_file(out)[1]
        first = bag["bag_index"] == 0
        got[kind] = (bag["boxes"][first][0].tolist(), bag["objectness"][first])
    assert got["contrast"][0] == [10, 8, 30, 28] and got["contrast"][1].max() == pytest.approx(1.0)
    assert got["none"][0] == [14, 12, 26, 24] and not got["none"][1].any()
    assert sorted(got["proposals"][1].tolist()) == pytest.approx([0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match="objectness must be"):
        make_bags(dicts, _Cues(), out, proposals, objectness="mcg", progress=False)


def test_make_ccgr_bags_cli_reports_skipped_images(tmp_path, caplog):
    """tools/make_ccgr_bags.py with --foreground-labels: an image whose label map is missing is skipped and the
    reason is logged with its file and image id; the other image gets its bags."""
    import json
    import logging

    from wsis.cli.make_ccgr_bags import main
    from wsis.data.cue_store import CueWriter, make_provenance

    img, _ = _image(tmp_path)
    images = tmp_path / "images"
    images.mkdir()
    cams = np.zeros((1, 16, 16), np.float32)
    cams[0, 4, 4], cams[0, 11, 11] = 1.0, 0.9
    coco = {"images": [], "annotations": [], "categories": [{"id": 7, "name": "thing"}]}
    with CueWriter(str(tmp_path / "cues"), make_provenance("cam", {"t": 1}, source="t", source_hash="0")) as w:
        for i in (1, 2):
            cv2.imwrite(str(images / f"{i}.png"), img)
            coco["images"].append({"id": i, "file_name": f"{i}.png", "height": 64, "width": 64, "image_labels": [7]})
            w.add({"image_id": i, "height": 64, "width": 64, "stride": 4, "classes": [0], "cams": cams})
    (tmp_path / "c.json").write_text(json.dumps(coco))
    labels = tmp_path / "labels"
    labels.mkdir()
    label = np.zeros((64, 64), np.uint8)
    label[8:28, 10:30] = label[36:60, 34:58] = 1
    cv2.imwrite(str(labels / "1.png"), label)
    out = str(tmp_path / "bags.pkl")
    with caplog.at_level(logging.WARNING):
        stats = main(["--json", str(tmp_path / "c.json"), "--images", str(images), "--cues", str(tmp_path / "cues"),
                      "--foreground-labels", str(labels), "--out", out, "--workers", "1", "--no-progress"])
    assert stats["images_with_bags"] == 1 and stats["skipped"] == 1 and stats["bags"] == 2
    assert list(read_bag_file(out)) == [1]
    assert any("image id 2" in r.getMessage() and "2.png" in r.getMessage() for r in caplog.records)
