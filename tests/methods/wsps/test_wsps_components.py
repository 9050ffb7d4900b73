"""GrabCut, proposals, the box window and DenseCRF of the WSPS generator: synthetic shapes and a real ECSSD mask."""
import os

import cv2
import numpy as np
import pytest

from wsis.data.pseudo_store import decode_mask
from wsis.core.crf import DenseCRFParams, dense_crf
import wsis.methods.generators  # noqa: F401  (registers the generators)
from wsis.pseudo import build_generator
from wsis.core.boxes import annotation_extent
from wsis.methods.wsps.generator import WSPSGenerator
from wsis.methods.wsps.crf import crf_box_states
from wsis.methods.wsps.crop import BoxWindow
from wsis.methods.wsps.fusion import BG, FG, UNSURE
from wsis.methods.wsps.grabcut import grabcut_box
from wsis.methods.wsps.proposals import box_proposal

from conftest import SHARED_DATA

ECSSD = os.path.join(SHARED_DATA, "ecssd")


def iou(a, b):
    return np.count_nonzero(a & b) / max(np.count_nonzero(a | b), 1)


def disc_scene(h=120, w=160, centre=(80, 60), r=30, seed=0):
    """A red disc on a noisy green background; returns (BGR image, disc mask, tight box (x0, y0, x1, y1))."""
    rng = np.random.RandomState(seed)
    img = np.clip(np.array([40, 150, 40]) + rng.randint(-25, 25, (h, w, 3)), 0, 255).astype(np.uint8)
    cv2.circle(img, centre, r, (40, 40, 210), -1)
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, centre, r, 1, -1)
    ys, xs = np.nonzero(mask)
    return img, mask.astype(bool), (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_box_window_geometry():
    win = BoxWindow((100, 200), (190, 0, 200, 100), margin=0.5, box_size=64)  # right border, full height
    assert win.window == (182, 0, 200, 100) and win.shape[0] == 64
    x0, y0, x1, y1 = win.rect
    assert x1 == win.shape[1] and y0 == 0 and y1 == 64
    assert win.to_box(win.box_mask()).shape == (100, 10) and win.to_box(win.box_mask()).all()
    tiny = BoxWindow((50, 50), (20, 20, 21, 21), box_size=32)  # one pixel → 32 px; 8 px of context each side
    assert tiny.window == (12, 12, 29, 29) and tiny.scale == 32
    assert tiny.to_box(tiny.box_mask()).shape == (1, 1)
    with pytest.raises(ValueError, match="empty or outside"):
        BoxWindow((50, 50), (10, 10, 10, 20))


def test_grabcut_and_proposal_find_a_disc():
    img, gt, box = disc_scene()
    x0, y0, x1, y1 = box
    for init in ("core", "rect"):
        g = grabcut_box(img, box, init=init)
        assert g.shape == (y1 - y0, x1 - x0) and iou(g, gt[y0:y1, x0:x1]) > 0.9, init
    win = BoxWindow(img.shape, box, box_size=64)
    p, box_iou = box_proposal(win.crop(img), win.box_mask())
    assert iou(win.to_box(p), gt[y0:y1, x0:x1]) > 0.85 and 0 < box_iou <= 1


@pytest.mark.parametrize("box", [(0, 0, 160, 120),   # the whole image: no pixel outside the box
                                 (0, 0, 40, 120),    # touching three borders
                                 (70, 50, 73, 53),   # tiny (3 x 3)
                                 (50, 60, 51, 110),  # one pixel wide
                                 (159, 119, 160, 120)])  # the last pixel
def test_degenerate_boxes(box):
    img, _, _ = disc_scene()
    gen = WSPSGenerator(crf={"iterations": 2})
    x0, y0, x1, y1 = box
    g, p = gen.grabcut(img, box), gen.proposal(img, box)
    assert g.shape == p.shape == (y1 - y0, x1 - x0) and g.dtype == p.dtype == bool
    states = (g.astype(np.uint8) + p)
    assert crf_box_states(img, box, states, DenseCRFParams(iterations=2)).shape == g.shape
    assert grabcut_box(img, box, init="rect").shape == g.shape


def test_whole_image_box_keeps_the_object():
    img, gt, _ = disc_scene(r=45)
    g = grabcut_box(img, (0, 0, 160, 120))
    assert iou(g, gt) > 0.8, "the border band gives GrabCut its background samples"


def test_generator_record_deterministic_and_bad_images(tmp_path):
    img, gt, box = disc_scene()
    path = str(tmp_path / "a.png")
    cv2.imwrite(path, img)
    x0, y0, x1, y1 = box
    d = {"file_name": path, "image_id": 3, "height": 120, "width": 160,
         "annotations": [{"id": 5, "category_id": 2, "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": 0},
                         {"id": 6, "category_id": 2, "bbox": [0, 0, 10, 10], "iscrowd": 1}]}
    gen = build_generator("wsps", refine="none")
    rec = gen(d)
    assert [i["annotation_id"] for i in rec["instances"]] == [5], "crowds get no instance"
    m = decode_mask(rec["instances"][0]["segmentation"])
    assert rec["instances"][0]["valid"] and iou(m, gt) > 0.85
    assert rec == gen(d), "deterministic"
    final = WSPSGenerator()(d)
    assert iou(decode_mask(final["instances"][0]["segmentation"]), gt) > 0.85
    assert decode_mask(final["ignore"])[:10, :10].all(), "the crowd region is ignored"
    with pytest.raises(OSError, match="cannot read"):
        gen(dict(d, file_name=str(tmp_path / "missing.jpg")))
    with pytest.raises(ValueError, match="annotations say"):
        gen(dict(d, height=100))
    with pytest.raises(ValueError, match="unknown grabcut"):
        WSPSGenerator(grabcut={"iters": 3})
    with pytest.raises(ValueError, match="refine"):
        WSPSGenerator(refine="grabcut")


def test_grabcut_failure_is_counted_and_the_instance_invalid(tmp_path, monkeypatch, caplog):
    img, gt, box = disc_scene()
    path = str(tmp_path / "a.png")
    cv2.imwrite(path, img)
    x0, y0, x1, y1 = box
    d = {"file_name": path, "image_id": 3, "height": 120, "width": 160,
         "annotations": [{"id": 5, "category_id": 2, "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": 0}]}

    def fails(*args, **kwargs):
        raise cv2.error("too few samples")

    monkeypatch.setattr(cv2, "grabCut", fails)
    assert grabcut_box(img, box) is None, "no estimate, not the whole box"
    for refine in ("none", "crf"):
        with caplog.at_level("WARNING"):
            rec = WSPSGenerator(refine=refine)(d)
        inst = rec["instances"][0]
        assert inst["valid"] is False and inst["score"] == 0.0
        assert not decode_mask(inst["segmentation"]).any()
        assert decode_mask(rec["ignore"])[y0:y1, x0:x1].all(), "its pixels are unsure, not foreground"
        assert "GrabCut failed on annotation id 5" in caplog.text and "image id 3" in caplog.text
        caplog.clear()


def _ecssd(stem):
    image, mask = os.path.join(ECSSD, "images", f"{stem}.jpg"), os.path.join(ECSSD, "masks", f"{stem}.png")
    if not os.path.isfile(image):
        pytest.skip(f"shared data not found at {ECSSD}")
    return cv2.imread(image), cv2.imread(mask, cv2.IMREAD_GRAYSCALE) >= 128


def test_dense_crf_improves_agreement_with_a_real_mask():
    img, gt = _ecssd("0001")
    # a coarse, blurry estimate of the real mask: the mask of a 1/16-resolution copy, blurred
    h, w = gt.shape
    small = cv2.resize(gt.astype(np.float32), (w // 16, h // 16), interpolation=cv2.INTER_AREA)
    coarse = cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), (0, 0), 6)
    prob = np.clip(0.1 + 0.8 * coarse, 0, 1)
    before = iou(prob > 0.5, gt)
    q = dense_crf(img, np.stack([1 - prob, prob]))  # DeepLab's parameters
    after = iou(q[1] > 0.5, gt)
    assert after > before + 0.01, (before, after)  # measured: 0.872 → 0.890


def test_crf_fills_unsure_pixels_towards_the_real_mask():
    img, gt = _ecssd("0002")
    ys, xs = np.nonzero(gt)
    box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    x0, y0, x1, y1 = box
    g = gt[y0:y1, x0:x1]
    k = np.ones((15, 15), np.uint8)
    inner, outer = cv2.erode(g.astype(np.uint8), k) > 0, cv2.dilate(g.astype(np.uint8), k) > 0
    states = np.where(inner, FG, np.where(outer, UNSURE, BG)).astype(np.uint8)  # a 7-pixel unsure band
    refined = crf_box_states(img, box, states) == FG
    assert iou(refined, g) > max(iou(inner, g), iou(outer, g)) and iou(refined, g) > 0.9


def test_generator_beats_box_fill_on_a_real_image():
    img, gt = _ecssd("0003")
    ys, xs = np.nonzero(gt)
    h, w = gt.shape
    d = {"file_name": os.path.join(ECSSD, "images", "0003.jpg"), "image_id": 3, "height": h, "width": w,
         "annotations": [{"id": 1, "category_id": 0, "iscrowd": 0,
                          "bbox": [float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()),
                                   float(ys.max() + 1 - ys.min())]}]}
    x0, y0, x1, y1 = annotation_extent(d["annotations"][0], h, w)
    fill = np.zeros_like(gt)
    fill[y0:y1, x0:x1] = True
    m = decode_mask(WSPSGenerator()(d)["instances"][0]["segmentation"])
    assert iou(m, gt) > iou(fill, gt) + 0.1
