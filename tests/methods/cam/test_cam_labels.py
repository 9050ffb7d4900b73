"""Semantic pseudo labels from cues: IRNet's confident areas (§4.2, ``cam_to_ir_label.py``) and WSPS's thresholds."""
import glob
import os

import cv2
import numpy as np
import pytest

import wsis.methods.cam.labels as labels_mod
from wsis.methods.cam.labels import (
    IRNET_LABEL_CRF,
    irnet_confident_labels,
    label_probabilities,
    wsps_labels,
)
from wsis.core.semantic import write_label_png
from conftest import SHARED_DATA

# two cues on a 2 × 4 image, classes 3 and 7 (labels 4 and 8)
CAM_A = [[0.9, 0.4, 0.2, 0.0], [0.31, 0.30, 0.05, 0.04]]
CAM_B = [[0.5, 0.6, 0.0, 0.0], [0.0, 0.0, 0.0, 0.06]]


def test_irnet_confident_labels_by_hand_without_crf():
    cams = np.array([CAM_A, CAM_B], dtype=np.float32)
    out = irnet_confident_labels(None, cams, [3, 7], crf=None)
    # fg: a class strictly above 0.30 (0.30 itself ties with the background channel → background);
    # bg: every class at most 0.05; in between: 255
    expected = [[4, 8, 255, 0],
                [4, 255, 0, 255]]
    assert out.dtype == np.uint8 and out.tolist() == expected
    # other thresholds move the bands
    assert irnet_confident_labels(None, cams, [3, 7], fg_threshold=0.5, bg_threshold=0.3, crf=None).tolist() == \
        [[4, 8, 0, 0], [255, 0, 0, 0]]


def test_irnet_untagged_image_is_background_without_a_crf_call(monkeypatch):
    def no_crf(*args, **kwargs):
        raise AssertionError("dense_crf called for an untagged image")

    monkeypatch.setattr(labels_mod, "dense_crf", no_crf)
    out = irnet_confident_labels(np.zeros((3, 5, 3), np.uint8), np.zeros((0, 3, 5), np.float32), [])
    assert out.dtype == np.uint8 and out.shape == (3, 5) and not out.any()


def test_irnet_background_needs_both_refined_maps(monkeypatch):
    # a stand-in CRF: the fg map comes back as it went in, the bg map comes back all background. A pixel the
    # refined fg map gives a class keeps it; the others are background (both maps say so), none is ignored.
    calls = []

    def fake_crf(image, probs, params):
        calls.append(params)
        if len(calls) == 1:
            return probs
        out = np.zeros_like(probs)
        out[0] = 1
        return out

    monkeypatch.setattr(labels_mod, "dense_crf", fake_crf)
    cams = np.array([CAM_A, CAM_B], dtype=np.float32)
    out = irnet_confident_labels(np.zeros((2, 4, 3), np.uint8), cams, [3, 7])
    assert calls == [IRNET_LABEL_CRF, IRNET_LABEL_CRF]
    assert out.tolist() == [[4, 8, 0, 0], [4, 0, 0, 0]]


def test_label_probabilities_are_pydensecrf_unary_from_labels():
    from pydensecrf.utils import unary_from_labels

    rng = np.random.RandomState(0)
    lab = rng.randint(0, 4, (5, 6))
    probs = label_probabilities(lab, 4)
    assert np.allclose(probs.sum(0), 1)
    assert np.allclose(-np.log(probs).reshape(4, -1), unary_from_labels(lab, 4, gt_prob=0.7, zero_unsure=False))


def test_irnet_crf_parameters_are_the_official_ones():
    p = IRNET_LABEL_CRF
    assert (p.iterations, p.gaussian_xy_std, p.gaussian_weight) == (10, 3, 3)
    assert (p.bilateral_xy_std, p.bilateral_rgb_std, p.bilateral_weight) == (50, 5, 10)
    assert p.normalization == "symmetric"  # pydensecrf's default, as IRNet calls it


def _official_crf_inference_label(img, labels, n_labels, t=10, gt_prob=0.7):
    """IRNet's ``misc/imutils.crf_inference_label``, re-stated with pydensecrf calls as the reference."""
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_labels

    h, w = img.shape[:2]
    d = dcrf.DenseCRF2D(w, h, n_labels)
    d.setUnaryEnergy(unary_from_labels(labels, n_labels, gt_prob=gt_prob, zero_unsure=False))
    d.addPairwiseGaussian(sxy=3, compat=3)
    d.addPairwiseBilateral(sxy=50, srgb=5, rgbim=np.ascontiguousarray(np.copy(img)), compat=10)
    q = d.inference(t)
    return np.argmax(np.array(q).reshape((n_labels, h, w)), axis=0)


def _blob_image(h=48, w=64):
    """A textured background with a brighter ellipse, and a blurred, off-centre cue of it (max 1)."""
    rng = np.random.RandomState(1)
    img = rng.randint(40, 90, (h, w, 3)).astype(np.uint8)
    obj = np.zeros((h, w), np.uint8)
    cv2.ellipse(obj, (30, 24), (14, 10), 0, 0, 360, 1, -1)
    img[obj > 0] = rng.randint(170, 230, (int(obj.sum()), 3))
    cam = cv2.GaussianBlur(obj.astype(np.float32), (0, 0), 5)
    cam = np.roll(cam, 3, axis=1)
    return img, obj.astype(bool), cam / cam.max()


def test_irnet_crf_matches_the_official_procedure():
    img, _, cam = _blob_image()
    cams = np.stack([cam, 0.6 * np.roll(cam, 20, axis=1)])
    out = irnet_confident_labels(img, cams, [0, 5])
    keys = np.array([0, 1, 6])
    fg = keys[_official_crf_inference_label(img, np.argmax(np.concatenate([np.full((1,) + cam.shape, 0.30),
                                                                           cams]), 0), 3)]
    bg = keys[_official_crf_inference_label(img, np.argmax(np.concatenate([np.full((1,) + cam.shape, 0.05),
                                                                           cams]), 0), 3)]
    ref = fg.copy()
    ref[fg == 0] = 255
    ref[bg + fg == 0] = 0
    assert (out == ref).mean() > 0.999  # float32 unary rounding may flip a tie, nothing more


def _ecssd_sample():
    images = sorted(glob.glob(os.path.join(SHARED_DATA, "ecssd", "images", "*.jpg")))
    if not images:
        return None
    path = images[0]
    mask_path = os.path.join(SHARED_DATA, "ecssd", "masks", os.path.splitext(os.path.basename(path))[0] + ".png")
    img = cv2.imread(path)
    mask = cv2.imread(mask_path, cv2.IMREAD_GRAYSCALE)
    if img is None or mask is None:
        return None
    scale = 96 / max(img.shape[:2])
    size = (round(img.shape[1] * scale), round(img.shape[0] * scale))
    img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST) > 127
    cam = cv2.GaussianBlur(cv2.erode(mask.astype(np.float32), np.ones((9, 9), np.uint8)), (0, 0), 4)
    return img, mask, cam / max(cam.max(), 1e-6)


@pytest.mark.parametrize("source", ["synthetic", "ecssd"])
def test_irnet_crf_labels_on_a_real_looking_image(source):
    sample = _blob_image() if source == "synthetic" else _ecssd_sample()
    if sample is None:
        pytest.skip("ECSSD not found in the shared data")
    img, obj, cam = sample
    out = irnet_confident_labels(img, cam[None], [4])
    assert set(np.unique(out).tolist()) <= {0, 5, 255}
    fg = out == 5
    assert fg.any() and (out == 0).any()
    assert (fg & obj).sum() / fg.sum() > 0.8  # the confident foreground lies on the object


def test_wsps_per_class_half_max_and_smaller_area_wins():
    # class 2: max 1.0 → ≥ 0.5 is 4 px; class 6: max 0.2 (weak everywhere) → ≥ 0.1 is 2 px, inside class 2's
    a = np.array([[1.0, 0.9, 0.6, 0.5, 0.4, 0.0]], np.float32)
    b = np.array([[0.0, 0.1, 0.2, 0.05, 0.0, 0.0]], np.float32)
    out = wsps_labels(np.stack([a, b]), [2, 6])
    assert out.dtype == np.uint8 and out.tolist() == [[3, 7, 7, 3, 0, 0]]
    # the order of the maps does not matter, only the areas
    assert wsps_labels(np.stack([b, a]), [6, 2]).tolist() == [[3, 7, 7, 3, 0, 0]]
    # the smaller area wins whatever the class ids (not the larger label)
    assert wsps_labels(np.stack([a, b]), [6, 2]).tolist() == [[7, 3, 3, 7, 0, 0]]
    assert wsps_labels(np.stack([a, b]), [2, 6], rest="ignore").tolist() == [[3, 7, 7, 3, 255, 255]]
    # Grad-CAM's original 15%: class 2 covers 0.4 too
    assert wsps_labels(np.stack([a, b]), [2, 6], threshold=0.15).tolist() == [[3, 7, 7, 7, 3, 0]]


def test_wsps_zero_maps_and_no_tags():
    zero = np.zeros((1, 2, 3), np.float32)
    assert not wsps_labels(zero, [1]).any()
    assert (wsps_labels(zero, [1], rest="ignore") == 255).all()
    assert not wsps_labels(np.zeros((0, 2, 3)), []).any()
    with pytest.raises(ValueError, match="rest"):
        wsps_labels(zero, [1], rest="void")
    with pytest.raises(ValueError, match="8-bit"):
        wsps_labels(zero, [254])


def test_write_label_png_round_trip_and_errors(tmp_path, monkeypatch):
    label = np.array([[0, 1, 255], [7, 0, 3]], np.uint8)
    path = str(tmp_path / "sub" / "7.png")
    write_label_png(label, path)
    assert np.array_equal(cv2.imread(path, cv2.IMREAD_UNCHANGED), label)
    assert os.listdir(tmp_path / "sub") == ["7.png"]
    with pytest.raises(ValueError, match="uint8"):
        write_label_png(label.astype(np.int64), path)
    monkeypatch.setattr(cv2, "imencode", lambda *a: (False, None))  # the encoder write_label_png uses
    with pytest.raises(OSError, match="8.png"):
        write_label_png(label, str(tmp_path / "sub" / "8.png"))
    assert sorted(os.listdir(tmp_path / "sub")) == ["7.png"]
