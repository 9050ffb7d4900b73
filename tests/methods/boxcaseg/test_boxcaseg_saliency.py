"""BoxCaseg's salient-object maps: the whole-image input (the salient training geometry), the stored uint8 map, its
quality, and the resumable job (with a stand-in model; the real one is in tests/d2/test_boxcaseg_saliency_d2.py)."""
import contextlib
import json
import os

import cv2
import numpy as np
import pytest
import torch

from wsis.methods.boxcaseg.crops import salient_sample
from wsis.methods.boxcaseg.saliency import SaliencyQuality, saliency_input, saliency_map, saliency_quality
from wsis.methods.boxcaseg.saliency_job import make_saliency_maps
from wsis.methods.dsrg.seeds import read_saliency


def test_input_is_the_salient_training_resize():
    image = np.random.default_rng(0).integers(0, 256, (37, 61, 3), dtype=np.uint8)
    x = saliency_input(image, 24)
    assert x.shape == (24, 24, 3) and x.dtype == np.uint8
    # a salient training sample whose crop is the whole resized square (no flip) is this input
    train, _, _ = salient_sample(image, np.ones((37, 61), bool), np.random.default_rng(1), 24, 24, flip=False)
    assert np.array_equal(x, train)
    assert np.array_equal(x, cv2.resize(image, (24, 24), interpolation=cv2.INTER_LINEAR))
    with pytest.raises(ValueError):
        saliency_input(image[:, :, 0], 24)


def test_map_is_the_probability_resized_back_and_rounded():
    prob = np.linspace(0, 1, 8 * 8, dtype=np.float32).reshape(8, 8)
    out = saliency_map(prob, 20, 12)
    assert out.shape == (20, 12) and out.dtype == np.uint8
    expected = np.rint(255 * np.clip(cv2.resize(prob, (12, 20), interpolation=cv2.INTER_LINEAR), 0, 1))
    assert np.array_equal(out, expected.astype(np.uint8))
    assert out[0, 0] == 0 and out[-1, -1] == 255
    assert (saliency_map(np.full((4, 4), 0.5, np.float32), 3, 5) == 128).all()  # rint(127.5) = 128 (half to even)
    assert (saliency_map(np.full((4, 4), 1.7), 3, 5) == 255).all()  # clipped
    assert (saliency_map(np.full((4, 4), 0.0588), 3, 5) == 15).all()  # 15 / 255 < 0.06: DSRG background
    # what DSRG reads back: map / 255
    for bad in (np.zeros(4), np.array([[0.1, np.nan]]), np.zeros((2, 2), np.uint8)):
        with pytest.raises(ValueError):
            saliency_map(bad, 4, 4)


def _gt(h=10, w=10):
    g = np.zeros((h, w), bool)
    g[2:6, 3:8] = True
    return g


def test_quality_perfect_inverted_and_by_hand():
    g = _gt()
    q = SaliencyQuality()
    q.add(np.where(g, 255, 0).astype(np.uint8), g)
    s = q.summarize()
    assert s["mae"] == 0 and s["f_measure"] == 1 and s["mean_iou"] == 1 and s["precision"] == s["recall"] == 1
    assert s["bg_seed_precision"] == 1 and s["bg_seed_recall"] == 1 and s["num_scored"] == 1
    q = SaliencyQuality()
    q.add(np.where(g, 0, 255).astype(np.uint8), g)
    s = q.summarize()
    assert s["mae"] == 1 and s["f_measure"] == 0 and s["mean_iou"] == 0 and s["bg_seed_precision"] == 0
    # by hand: 20 true pixels; the map says 200 on 10 of them and on 10 background pixels, 15 (a seed) on the
    # other 10 true pixels, 16 (no seed) on the rest; the crowd column 0 is ignored (it says 255 there)
    sal = np.full((10, 10), 16, np.uint8)
    sal[2:4, 3:8] = 200
    sal[4:6, 3:8] = 15
    sal[8:10, 3:8] = 200
    sal[:, 0] = 255
    ignore = np.zeros((10, 10), bool)
    ignore[:, 0] = True
    q = SaliencyQuality()
    q.add(sal, g, ignore)
    s = q.summarize()
    p, r = 10 / 20, 10 / 20
    assert s["precision"] == p and s["recall"] == r
    assert s["f_measure"] == pytest.approx(1.3 * p * r / (0.3 * p + r))
    assert s["mean_iou"] == pytest.approx(10 / 30)
    assert s["bg_seed_precision"] == 0 and s["bg_seed_recall"] == 0  # its only seeds are on the object
    err = (10 * abs(200 / 255 - 1) + 10 * abs(15 / 255 - 1) + 10 * 200 / 255 + 60 * 16 / 255) / 90
    assert s["mae"] == pytest.approx(err, rel=1e-6)
    # two images: mae and IoU are means over images, an image with nothing salient and no prediction has IoU 1
    q.add(np.zeros((4, 4), np.uint8), np.zeros((4, 4), bool))
    assert q.summarize()["mean_iou"] == pytest.approx((10 / 30 + 1) / 2)
    assert SaliencyQuality().summarize()["mae"] is None
    with pytest.raises(ValueError):
        q.add(np.zeros((4, 5), np.uint8), np.zeros((4, 4), bool))


def _poly(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def test_quality_of_a_folder_against_the_union_of_masks(tmp_path):
    anns = [{"id": 1, "category_id": 0, "segmentation": _poly(2, 2, 6, 6), "iscrowd": 0},
            {"id": 2, "category_id": 1, "segmentation": _poly(4, 4, 9, 8), "iscrowd": 0},
            {"id": 3, "category_id": 1, "segmentation": _poly(0, 10, 12, 12), "iscrowd": 1}]
    dicts = [{"image_id": 1, "height": 12, "width": 12, "annotations": anns},
             {"image_id": 2, "height": 12, "width": 12, "annotations": []}]
    union = np.zeros((12, 12), bool)
    union[2:6, 2:6] = union[4:8, 4:9] = True
    sal = np.where(union, 255, 0).astype(np.uint8)
    sal[10:] = 255  # the crowd rows: ignored
    cv2.imwrite(str(tmp_path / "1.png"), sal)
    res = saliency_quality(str(tmp_path), dicts)
    assert res["mae"] == 0 and res["mean_iou"] == 1 and res["num_scored"] == 1 and res["num_missing"] == 1


class _StandInModel:
    """The interface :func:`make_saliency_maps` uses (:class:`BoxCasegSaliency`'s), with a fixed rule: the map
    is the image's first channel."""

    def __init__(self, params):
        self.params, self.loaded, self.predicted = params, 0, []

    @contextlib.contextmanager
    def process_context(self):
        yield

    def load(self):
        self.loaded += 1

    def image_tensor(self, d):
        image = cv2.imread(d["file_name"], cv2.IMREAD_COLOR)
        if image is None:
            raise OSError("cannot read the image")
        if image.shape[:2] != (d["height"], d["width"]):
            raise ValueError("not the size its annotation says")
        return torch.as_tensor(image.transpose(2, 0, 1).copy())

    def predict(self, image):
        self.predicted.append(tuple(image.shape))
        return image[0].numpy().copy()


def _images(tmp_path):
    dicts = []
    for i in (1, 2, 3):
        img = np.full((9, 7, 3), 40 * i, np.uint8)
        cv2.imwrite(str(tmp_path / f"{i}.png"), img)
        dicts.append({"image_id": i, "file_name": str(tmp_path / f"{i}.png"), "height": 9, "width": 7})
    return dicts


def test_job_resumes_refuses_other_settings_and_reports_skips(tmp_path):
    dicts = _images(tmp_path)
    out = str(tmp_path / "sal")
    model = _StandInModel({"weights": "a.pth", "weights_sha256": "0" * 64, "salient_resize": (4, 4)})
    bad = dicts + [{"image_id": 9, "file_name": str(tmp_path / "none.png"), "height": 9, "width": 7},
                   dict(dicts[0], image_id=8, height=5)]
    skipped = make_saliency_maps(model, bad, out, progress=False)
    assert [i for i, _ in skipped] == [8, 9]
    assert "none.png: image id 9: cannot read" in skipped[1][1] and "1.png: image id 8:" in skipped[0][1]
    report = json.load(open(os.path.join(out, "skipped.json")))
    assert [r["image_id"] for r in report] == [8, 9]
    assert sorted(os.listdir(out)) == ["1.png", "2.png", "3.png", "params.json", "skipped.json"]
    assert read_saliency(out, 2, 9, 7)[0, 0] == pytest.approx(80 / 255)
    assert json.load(open(os.path.join(out, "params.json")))["salient_resize"] == [4, 4]
    # a rerun makes only what is missing; the skip report follows the last run
    os.remove(os.path.join(out, "2.png"))
    again = _StandInModel(dict(model.params))
    assert make_saliency_maps(again, dicts, out, progress=False) == []
    assert len(again.predicted) == 1 and not os.path.exists(os.path.join(out, "skipped.json"))
    done = _StandInModel(dict(model.params))
    make_saliency_maps(done, dicts, out, progress=False)
    assert done.predicted == [] and done.loaded == 0  # nothing to do: the model is not even loaded
    with pytest.raises(ValueError, match="another checkpoint or settings.*--overwrite"):
        make_saliency_maps(_StandInModel(dict(model.params, weights="b.pth")), dicts, out, progress=False)
    other = _StandInModel(dict(model.params, weights="b.pth"))
    make_saliency_maps(other, dicts[:1], out, progress=False, overwrite=True)
    assert sorted(os.listdir(out)) == ["1.png", "params.json"]
