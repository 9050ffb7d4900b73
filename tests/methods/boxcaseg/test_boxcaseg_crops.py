import cv2
import numpy as np
import pytest

from wsis.methods.boxcaseg.crops import (
    augment_box,
    crop_affine,
    crop_box_sample,
    paste_crop_map,
    proxy_crop,
    salient_sample,
    tight_box_label,
)
from wsis.core.boxes import pixel_extent


def _coords_image(h, w):
    """uint8 image with channel 0 = row, channel 1 = column, channel 2 = 7 (h, w ≤ 256)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([yy, xx, np.full_like(yy, 7)], axis=-1).astype(np.uint8)


# ---------------------------------------------------------------- augment_box
@pytest.mark.parametrize("jitter,scales", [(0.25, (0.5, 1.5)), (0.125, (0.8, 1.2))])
def test_augment_box_stays_in_stated_ranges(jitter, scales):
    rng = np.random.default_rng(0)
    box = np.array([10.0, 20.0, 50.0, 40.0])  # w = 40, h = 20, centre (30, 30)
    out = np.stack([augment_box(box, rng, jitter, scales) for _ in range(3000)])
    cx, cy = (out[:, 0] + out[:, 2]) / 2, (out[:, 1] + out[:, 3]) / 2
    rw, rh = (out[:, 2] - out[:, 0]) / 40, (out[:, 3] - out[:, 1]) / 20
    assert np.all(np.abs(cx - 30) <= jitter * 40 + 1e-9) and np.all(np.abs(cy - 30) <= jitter * 20 + 1e-9)
    assert np.all((rw >= scales[0] - 1e-12) & (rw <= scales[1] + 1e-12))
    assert np.all((rh >= scales[0] - 1e-12) & (rh <= scales[1] + 1e-12))
    # the draws fill the ranges (the bound is in units of the full width / height) and are independent per axis
    assert np.abs(cx - 30).max() > 0.95 * jitter * 40 and np.abs(cy - 30).max() > 0.95 * jitter * 20
    assert rw.min() < scales[0] + 0.02 and rw.max() > scales[1] - 0.02
    assert abs(np.corrcoef(rw, rh)[0, 1]) < 0.1
    assert out.dtype == np.float64


def test_augment_box_identity_determinism_and_bad_inputs():
    box = [1.5, 2.0, 7.0, 9.0]
    assert np.allclose(augment_box(box, np.random.default_rng(3), 0.0, (1.0, 1.0)), box)
    a = augment_box(box, np.random.default_rng(5))
    b = augment_box(box, np.random.default_rng(5))
    assert np.array_equal(a, b)
    rng = np.random.default_rng(0)
    for bad in ([0, 0, 0, 5], [0, 0, 5, -1], [0, 0, np.nan, 3], [1, 2, 3]):
        with pytest.raises(ValueError):
            augment_box(bad, rng)
    with pytest.raises(ValueError):
        augment_box(box, rng, center_jitter=-0.1)
    with pytest.raises(ValueError):
        augment_box(box, rng, scale_range=(1.5, 0.5))
    with pytest.raises(ValueError):
        augment_box(box, rng, scale_range=(0.0, 1.0))


# ---------------------------------------------------------------- crop_box_sample
def test_crop_equal_to_gt_box_gives_full_label():
    img = _coords_image(40, 50)
    crop, label = crop_box_sample(img, [5.3, 7.1, 30.9, 22.4], [5.3, 7.1, 30.9, 22.4], size=288)
    assert crop.shape == (288, 288, 3) and crop.dtype == np.uint8
    assert label.shape == (288, 288) and label.dtype == bool and label.all()


@pytest.mark.parametrize("size", [8, 288])
def test_crop_twice_as_large_gives_central_half(size):
    img = _coords_image(20, 20)
    _, label = crop_box_sample(img, [4, 4, 12, 12], [0, 0, 16, 16], size=size)
    expected = np.zeros((size, size), dtype=bool)
    expected[size // 4:3 * size // 4, size // 4:3 * size // 4] = True
    assert np.array_equal(label, expected)


def test_crop_label_is_the_projected_box_clipped():
    img = _coords_image(20, 20)
    # crop [0, 10]² onto 10 px (identity scale); GT box sticks out on the right and bottom
    _, label = crop_box_sample(img, [2.2, 6.6, 14.0, 30.0], [0, 0, 10, 10], size=10)
    expected = np.zeros((10, 10), dtype=bool)
    expected[7:, 2:] = True  # a pixel is in iff its centre is in [2.2, 14) × [6.6, 30)
    assert np.array_equal(label, expected)
    # a GT box that misses the crop box: all-False label (degenerate sample)
    _, empty = crop_box_sample(img, [12, 12, 15, 15], [0, 0, 10, 10], size=10)
    assert not empty.any()


def test_crop_pixels_translation_and_downscale():
    img = _coords_image(20, 30)
    crop, _ = crop_box_sample(img, [2, 3, 6, 7], [2, 3, 6, 7], size=4)  # identity scale: an exact sub-array
    assert np.array_equal(crop, img[3:7, 2:6])
    blocks = np.kron(np.arange(16, dtype=np.uint8).reshape(4, 4) * 10, np.ones((2, 2), dtype=np.uint8))
    blocky = np.repeat(blocks[:, :, None], 3, axis=2)  # 8×8 of constant 2×2 blocks
    crop, _ = crop_box_sample(blocky, [0, 0, 8, 8], [0, 0, 8, 8], size=4)
    assert np.array_equal(crop[..., 0], np.arange(16).reshape(4, 4) * 10)  # halving samples each block's centre


def test_crop_outside_the_image_is_zero_padded():
    img = np.full((10, 10, 3), 255, dtype=np.uint8)
    crop, label = crop_box_sample(img, [0, 0, 10, 10], [-10, -10, 20, 20], size=30)
    inside = np.zeros((30, 30), dtype=bool)
    inside[10:20, 10:20] = True
    assert np.all(crop[inside] == 255)
    assert np.all(crop[~inside] == 0)
    assert np.array_equal(label, inside)


def test_crop_affine_maps_box_edges_to_crop_edges():
    m = crop_affine([4, 6, 12, 10], 16)  # sx = 2, sy = 4
    to_crop = lambda x, y: m @ np.array([x - 0.5, y - 0.5, 1.0]) + 0.5  # continuous coords via pixel indices
    assert np.allclose(to_crop(4, 6), [0, 0]) and np.allclose(to_crop(12, 10), [16, 16])


def test_crop_bad_inputs():
    img = _coords_image(10, 10)
    with pytest.raises(ValueError):
        crop_box_sample(img[..., 0], [0, 0, 5, 5], [0, 0, 5, 5])
    with pytest.raises(ValueError):
        crop_box_sample(img, [0, 0, 5, 5], [3, 0, 3, 5])
    with pytest.raises(ValueError):
        crop_box_sample(img, [0, 0, 5], [0, 0, 5, 5])
    with pytest.raises(ValueError):
        crop_box_sample(img, [0, 0, 5, 5], [0, 0, 5, 5], size=0)


# ---------------------------------------------------------------- salient_sample
def _salient_input():
    img = np.zeros((40, 40, 3), dtype=np.uint8)
    img[..., 1] = np.arange(40, dtype=np.uint8)[None] * 5  # column code
    img[..., 2] = np.arange(40, dtype=np.uint8)[:, None] * 5  # row code
    mask = np.zeros((40, 40), dtype=bool)
    mask[10:25, 3:12] = True
    img[..., 0] = mask * 255
    return img, mask


def test_salient_sample_shapes_and_default_sizes():
    img, mask = _salient_input()
    out_img, out_mask, box = salient_sample(img, mask, np.random.default_rng(0))
    assert out_img.shape == (288, 288, 3) and out_img.dtype == np.uint8
    assert out_mask.shape == box.shape == (288, 288) and out_mask.dtype == box.dtype == bool
    assert out_mask.any() and np.array_equal(box, tight_box_label(out_mask))


def test_salient_sample_flips_image_and_mask_together():
    img, mask = _salient_input()
    flips = []
    for seed in range(40):
        out_img, out_mask, box = salient_sample(img, mask, np.random.default_rng(seed), resize=40, crop=32)
        assert np.array_equal(out_img[..., 0] == 255, out_mask)  # identity resize: mask and image stay aligned
        cols = out_img[0, :, 1].astype(int)
        flipped = cols[0] > cols[-1]
        flips.append(flipped)
        left, top = (cols[-1] if flipped else cols[0]) // 5, int(out_img[0, 0, 2]) // 5
        window = mask[top:top + 32, left:left + 32]
        assert np.array_equal(out_mask, window[:, ::-1] if flipped else window)
        if out_mask.any():
            rows, cs = np.flatnonzero(out_mask.any(1)), np.flatnonzero(out_mask.any(0))
            assert box[rows[0]:rows[-1] + 1, cs[0]:cs[-1] + 1].all() and box.sum() == rows.size * cs.size
        else:
            assert not box.any()
    assert 5 < sum(flips) < 35
    for seed in range(10):
        out_img, _, _ = salient_sample(img, mask, np.random.default_rng(seed), resize=40, crop=32, flip=False)
        assert out_img[0, 0, 1] < out_img[0, -1, 1]


def test_salient_sample_empty_mask_and_bad_inputs():
    img, mask = _salient_input()
    _, m, box = salient_sample(img, np.zeros_like(mask), np.random.default_rng(0), resize=40, crop=32)
    assert not m.any() and not box.any()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        salient_sample(img, mask[:30], rng)
    with pytest.raises(ValueError):
        salient_sample(img, mask, rng, resize=20, crop=32)
    with pytest.raises(ValueError):
        salient_sample(img[..., :2], mask, rng)
    a = salient_sample(img, mask, np.random.default_rng(9), resize=40, crop=32)
    b = salient_sample(img, mask, np.random.default_rng(9), resize=40, crop=32)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


# ---------------------------------------------------------------- proxy_crop / paste_crop_map
def test_proxy_crop_and_paste_round_trip():
    img = _coords_image(50, 60)
    box = [10.3, 5.6, 30.2, 25.4]
    crop, m = proxy_crop(img, box, size=320)
    assert crop.shape == (320, 320, 3) and m.shape == (2, 3)
    x0, y0, x1, y1 = pixel_extent((10.3, 5.6, 30.2, 25.4), 50, 60)
    assert (x0, y0, x1, y1) == (10, 6, 30, 25)
    pasted = paste_crop_map(np.ones((320, 320), dtype=np.float32), box, (50, 60))
    assert pasted.shape == (50, 60) and pasted.dtype == np.float32
    expected = np.zeros((50, 60), dtype=bool)
    expected[y0:y1, x0:x1] = True
    assert np.array_equal(pasted != 0, expected) and np.allclose(pasted[expected], 1.0)
    # the returned affine is the one of the pixel extent: warping with it reproduces the crop away from its border
    warped = cv2.warpAffine(img, m, (320, 320), flags=cv2.INTER_LINEAR)
    assert np.abs(warped[20:-20, 20:-20].astype(int) - crop[20:-20, 20:-20].astype(int)).max() <= 1


def test_proxy_crop_pixels_and_paste_of_a_map():
    img = _coords_image(30, 30)
    crop, _ = proxy_crop(img, [4, 5, 12, 9], size=8)  # 8×4 extent → 8×8: rows doubled
    assert np.array_equal(crop[:, :, 1], np.tile(np.arange(4, 12, dtype=np.uint8), (8, 1)))
    prob = np.zeros((8, 8))
    prob[:, :4] = 1.0
    out = paste_crop_map(prob, [4, 5, 12, 9], (30, 30))
    assert out.dtype == np.float64
    assert np.array_equal(out[5:9, 4:8], np.ones((4, 4))) and np.array_equal(out[5:9, 8:12], np.zeros((4, 4)))
    assert out.sum() == 16
    # a box running off the image is clipped to it, for the crop and the paste alike
    crop, _ = proxy_crop(img, [20, 20, 40, 40], size=10)
    assert crop.shape == (10, 10, 3) and crop[..., 1].min() >= 20
    pasted = paste_crop_map(np.ones((10, 10)), [20, 20, 40, 40], (30, 30))
    assert pasted[20:, 20:].all() and pasted.sum() == 100


def test_paste_bad_inputs():
    with pytest.raises(ValueError):
        paste_crop_map(np.ones((2, 2, 2)), [0, 0, 2, 2], (4, 4))
    with pytest.raises(ValueError):
        paste_crop_map(np.ones((0, 3)), [0, 0, 2, 2], (4, 4))
    with pytest.raises(ValueError):
        paste_crop_map(np.ones((2, 2)), [0, 0, 2], (4, 4))
    with pytest.raises(ValueError):
        proxy_crop(np.ones((4, 4)), [0, 0, 2, 2])
