"""Cues in a store → semantic label PNGs (resumable, refused with other settings, bad images counted) → quality."""
import json
import os

import cv2
import numpy as np
import pytest

from wsis.data.cue_store import CueStore, CueWriter, make_provenance
from wsis.methods.cam.cue_outputs import cue_localization, write_cue_outputs
from wsis.methods.cam.label_job import LabelSettings, label_image, label_quality, make_semantic_labels


def _poly(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


@pytest.fixture
def cue_set(tmp_path):
    """3 images 32x32 with a square of class 1 (labels 2) at (8..24); cues at stride 4 peaking on it; image 3 untagged."""
    dicts = []
    prov = make_provenance("cam", {"test": 1}, source="test", source_hash="0")
    with CueWriter(str(tmp_path / "cues"), prov) as w:
        for i in (1, 2, 3):
            img = np.full((32, 32, 3), 60, np.uint8)
            anns, classes, cams = [], [], np.zeros((0, 8, 8), np.float32)
            if i < 3:
                img[8:24, 8:24] = 220
                anns = [{"id": i, "category_id": 1, "bbox": [8, 8, 16, 16], "segmentation": _poly(8, 8, 24, 24),
                         "iscrowd": 0}]
                cams = np.zeros((1, 8, 8), np.float32)
                cams[0, 2:6, 2:6] = 1.0  # the square at stride 4
                cams[0, 1, 1:7] = 0.2  # a weak band: between the thresholds → ignore
                classes = [1]
            cv2.imwrite(str(tmp_path / f"{i}.png"), img)
            dicts.append({"image_id": i, "file_name": str(tmp_path / f"{i}.png"), "height": 32, "width": 32,
                          "annotations": anns, "image_labels": classes})
            w.add({"image_id": i, "height": 32, "width": 32, "stride": 4, "classes": classes, "cams": cams})
    return dicts, CueStore(str(tmp_path / "cues"))


def _files(folder):
    return {f: open(os.path.join(folder, f), "rb").read() for f in sorted(os.listdir(folder))}


def test_labels_resume_and_refuse_other_settings(cue_set, tmp_path):
    dicts, store = cue_set
    out = str(tmp_path / "labels")
    settings = LabelSettings(crf=False)
    assert make_semantic_labels(store, dicts, out, settings, progress=False) == []
    label = cv2.imread(os.path.join(out, "1.png"), cv2.IMREAD_UNCHANGED)
    assert label[16, 16] == 2 and label[0, 0] == 0 and label[31, 31] == 0
    assert (label == 255).any() and set(np.unique(label)) == {0, 2, 255}
    assert not cv2.imread(os.path.join(out, "3.png"), cv2.IMREAD_UNCHANGED).any()  # untagged: background
    first = _files(out)
    os.remove(os.path.join(out, "2.png"))  # a killed run: the missing map is redone, the rest kept
    make_semantic_labels(store, dicts, out, settings, workers=2, progress=False)
    assert _files(out) == first
    assert json.load(open(os.path.join(out, "params.json")))["labels"]["crf"] is False
    with pytest.raises(ValueError, match="other cues or settings"):
        make_semantic_labels(store, dicts, out, LabelSettings(crf=False, fg_threshold=0.5), progress=False)
    make_semantic_labels(store, dicts, out, LabelSettings(method="wsps"), progress=False, overwrite=True)
    assert set(np.unique(cv2.imread(os.path.join(out, "1.png"), cv2.IMREAD_UNCHANGED))) == {0, 2}


def test_shards_into_one_folder_equal_a_single_run(cue_set, tmp_path):
    dicts, store = cue_set
    settings = LabelSettings(crf=False)
    make_semantic_labels(store, dicts, str(tmp_path / "single"), settings, progress=False)
    for i in (1, 0):  # image ids 1 and 3 are shard 0 of 2, image 2 shard 1
        make_semantic_labels(store, dicts, str(tmp_path / "sharded"), settings, progress=False, num_shards=2,
                             shard_index=i)
        if i == 1:
            assert sorted(os.listdir(tmp_path / "sharded")) == ["2.png", "params.json"]
    assert _files(str(tmp_path / "single")) == _files(str(tmp_path / "sharded"))
    with pytest.raises(ValueError, match="--shard-index must be in"):
        make_semantic_labels(store, dicts, str(tmp_path / "sharded"), settings, progress=False, num_shards=2,
                             shard_index=2)


def test_bad_images_are_counted_not_fatal(cue_set, tmp_path):
    dicts, store = cue_set
    dicts = [dict(d) for d in dicts] + [{"image_id": 9, "file_name": "nowhere.png", "height": 32, "width": 32,
                                         "annotations": []}]
    dicts[1]["file_name"] = str(tmp_path / "missing.png")
    out = str(tmp_path / "labels")
    skipped = make_semantic_labels(store, dicts, out, LabelSettings(crf=False), progress=False)
    assert [s[0] for s in skipped] == [2, 9] and "cannot read" in skipped[0][1] and "no cues" in skipped[1][1]
    assert sorted(json.load(open(os.path.join(out, "skipped.json"))), key=lambda r: r["image_id"])[0]["image_id"] == 2
    assert os.path.exists(os.path.join(out, "1.png")) and not os.path.exists(os.path.join(out, "2.png"))


def test_label_quality_and_cue_localization(cue_set, tmp_path):
    dicts, store = cue_set
    out = str(tmp_path / "labels")
    make_semantic_labels(store, dicts, out, LabelSettings(crf=False), progress=False)
    q = label_quality(out, dicts, ["a", "b"])
    # the stride-4 square, upsampled bilinearly, spills a few pixels past the object: all of it is found, a little
    # background is taken for it; the weak band becomes ignore; no object pixel is called background
    assert q["num_images"] == 3 and q["fg_recall"] == pytest.approx(1.0) and 0.7 < q["fg_precision"] < 0.95
    assert q["bg_precision"] == pytest.approx(1.0) and 0 < q["fraction_ignored"] < 0.2
    loc = cue_localization(store, dicts, 2)
    assert loc["num_images"] == 3 and loc["cues/best_miou"] > 0.97  # (the upsampling blurs the edges a little)
    assert loc["prior/best_miou"] < loc["cues/best_miou"]
    m = write_cue_outputs(str(tmp_path / "cues"), str(tmp_path / "cues"), [], dicts, dicts, 2, {"method": "cam"})
    assert m["num_images"] == 3 and m["bytes_per_image"] > 0 and m["cues/best_miou"] == loc["cues/best_miou"]


def test_label_image_upsamples_to_the_image():
    image = np.zeros((30, 30, 3), np.uint8)
    cams = np.zeros((1, 8, 8), np.float32)
    cams[0, 2:6, 2:6] = 1
    lab = label_image(image, np.array([0]), cams, 4, LabelSettings(method="wsps"))
    assert lab.shape == (30, 30) and lab[16, 16] == 1 and lab[0, 0] == 0
    with pytest.raises(ValueError, match="LABELS"):
        LabelSettings(method="nope")
