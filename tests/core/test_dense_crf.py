"""DenseCRF on real ECSSD images: refinement of a coarse (28x28-like) mask moves it towards the known mask."""
import os

import cv2
import numpy as np
import pytest

from wsis.core.crf import BBTP_CRF, DenseCRFParams, dense_crf
from wsis.methods.bbtp.mask_crf import refine_instance_masks

from conftest import SHARED_DATA

ECSSD = os.path.join(SHARED_DATA, "ecssd")
IDS = [1, 5, 10, 20, 50, 100, 200, 300]


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def _coarse(i):
    """(image, GT mask, soft mask of the GT seen through a 14x14 grid in its box, box)."""
    img = cv2.imread(os.path.join(ECSSD, "images", f"{i:04d}.jpg"))
    gt = cv2.imread(os.path.join(ECSSD, "masks", f"{i:04d}.png"), cv2.IMREAD_GRAYSCALE) > 127
    ys, xs = np.nonzero(gt)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    small = cv2.resize(gt[y0:y1, x0:x1].astype(np.float32), (14, 14), interpolation=cv2.INTER_AREA)
    soft = np.full(gt.shape, 0.02, np.float32)
    soft[y0:y1, x0:x1] = np.clip(cv2.resize(small, (x1 - x0, y1 - y0)), 0.02, 0.98)
    return img, gt, soft, np.array([x0, y0, x1, y1], dtype=np.float32)


@pytest.fixture
def ecssd():
    if not os.path.isdir(ECSSD):
        pytest.skip("no ECSSD in the shared data")
    return [_coarse(i) for i in IDS]


def test_crf_improves_iou_on_real_images(ecssd):
    before = np.mean([_iou(s > 0.5, g) for _, g, s, _ in ecssd])
    after = np.mean([_iou(refine_instance_masks(im, s[None], b[None], DenseCRFParams())[0] > 0.5, g)
                     for im, g, s, b in ecssd])
    assert after > before + 0.005, (before, after)  # measured: 0.916 -> 0.932


def test_bbtp_kernels_act_only_unnormalised_as_in_its_matlab_code(ecssd):
    """BBTP's weights (0.005 / 0.05) are for unnormalised kernels (its MATLAB wrapper's NO_NORMALIZATION): there they
    move masks (measured: 0.3-11 % of the pixels of these 8 images), while under pydensecrf's default symmetric
    normalisation the same numbers are a no-op (< 0.05 %)."""
    import dataclasses

    assert BBTP_CRF.normalization == "none"
    symmetric = dataclasses.replace(BBTP_CRF, normalization="symmetric")
    moved = {}
    for name, params in (("none", BBTP_CRF), ("symmetric", symmetric)):
        moved[name] = [float(((refine_instance_masks(im, s[None], b[None], params)[0] > 0.5) != (s > 0.5)).mean())
                       for im, g, s, b in ecssd]
    assert max(moved["symmetric"]) < 0.001
    assert np.mean(moved["none"]) > 0.01 and min(moved["none"]) > 0.001
    with pytest.raises(ValueError, match="normalization"):
        DenseCRFParams(normalization="after")


def test_marginals_and_crop_outside_untouched(ecssd):
    im, g, s, b = ecssd[0]
    q = dense_crf(im, np.stack([1 - s, s]), DenseCRFParams(iterations=3))
    assert q.shape == (2,) + s.shape and np.allclose(q.sum(0), 1, atol=1e-4)
    two = refine_instance_masks(im, np.stack([s, s]), np.stack([b, [0, 0, 5, 5]]), DenseCRFParams(), box_margin=0.0)
    assert np.array_equal(two[1, 10:, 10:], s[10:, 10:]), "pixels outside the crop keep their input"


def test_bad_inputs():
    img = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match="probs must be"):
        dense_crf(img, np.ones((2, 5, 4)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        dense_crf(img, np.ones((1, 4, 5)))
    with pytest.raises(ValueError, match="uint8"):
        dense_crf(img.astype(np.float32), np.ones((2, 4, 5)) / 2)
    with pytest.raises(ValueError, match="boxes"):
        refine_instance_masks(img, np.zeros((2, 4, 5)), np.zeros((1, 4)))
    assert refine_instance_masks(img, np.zeros((0, 4, 5)), np.zeros((0, 4))).shape == (0, 4, 5)


def test_process_pool_gives_the_serial_result(ecssd):
    from concurrent.futures import ProcessPoolExecutor

    im, g, s, b = ecssd[0]
    masks = np.stack([s, np.roll(s, 7, axis=1)])
    boxes = np.stack([b, b + np.array([7, 0, 7, 0], dtype=np.float32)])
    serial = refine_instance_masks(im, masks, boxes, DenseCRFParams(iterations=3))
    with ProcessPoolExecutor(2) as pool:
        parallel = refine_instance_masks(im, masks, boxes, DenseCRFParams(iterations=3), executor=pool)
    assert np.array_equal(serial, parallel)
