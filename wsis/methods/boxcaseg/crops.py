"""
Crop-level inputs of BoxCaseg (Wang et al., CVPR 2021, §3.2.2 and §3.4), pure numpy/cv2.

Coordinates: boxes are float XYXY in continuous image coordinates where pixel (y, x) covers [x, x + 1) × [y, y + 1).
A crop box is mapped onto a size×size crop by scale + translation, so its edges land on the crop's edges.
"""
import math

import cv2
import numpy as np

from wsis.core.boxes import mask_tight_box, pixel_extent


def _as_box(box, name="box"):
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or not np.all(np.isfinite(b)):
        raise ValueError(f"{name} must be 4 finite numbers x0, y0, x1, y1, got {box!r}")
    return b


def _check_image(image, name="image"):
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must be an (H, W, 3) array, got shape {getattr(image, 'shape', None)}")


def _check_size(size, name="size"):
    if int(size) != size or int(size) < 1:
        raise ValueError(f"{name} must be a positive integer, got {size!r}")
    return int(size)


def augment_box(box_xyxy, rng, center_jitter=0.25, scale_range=(0.5, 1.5)):
    """
    BoxCaseg's box augmentation (§3.2.2 pseudo-code), read with (x, y) as the box centre:
    cx' = cx + U(−j, j)·w, cy' = cy + U(−j, j)·h, w' = U(a, b)·w, h' = U(a, b)·h, each draw independent.

    Unit of the jitter: j is a fraction of the **full** width/height (the paper's ``random(-0.25, 0.25) * w``), so
    the default j = 0.25 moves the centre by up to a quarter of the box size. "±0.25 of half-size" (DESIGN.md's
    reading of the official code) is j = 0.125.

    Args:
        box_xyxy: (4,) GT box, x1 > x0 and y1 > y0.
        rng (numpy.random.Generator): the draws are, in order, U(−j, j) for x, for y, then U(a, b) for w, for h.
        center_jitter (float): j ≥ 0.
        scale_range ((float, float)): (a, b), 0 < a ≤ b.

    Returns:
        ndarray[float64]: (4,) the augmented XYXY box (may extend past the image; the crop zero-pads).
    """
    x0, y0, x1, y1 = _as_box(box_xyxy, "box_xyxy")
    w, h = x1 - x0, y1 - y0
    if not (w > 0 and h > 0):
        raise ValueError(f"box_xyxy must have positive width and height, got {box_xyxy!r}")
    lo, hi = (float(v) for v in scale_range)
    if not 0 < lo <= hi or not center_jitter >= 0:
        raise ValueError(f"need center_jitter >= 0 and 0 < scale_range[0] <= scale_range[1], "
                         f"got {center_jitter}, {scale_range}")
    dx, dy = rng.uniform(-center_jitter, center_jitter, size=2)
    sw, sh = rng.uniform(lo, hi, size=2)
    cx, cy = (x0 + x1) / 2 + dx * w, (y0 + y1) / 2 + dy * h
    w2, h2 = sw * w, sh * h
    return np.array([cx - w2 / 2, cy - h2 / 2, cx + w2 / 2, cy + h2 / 2], dtype=np.float64)


def _scales(crop_box, size):
    x0, y0, x1, y1 = crop_box
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"crop box must have positive width and height, got {crop_box.tolist()}")
    return size / (x1 - x0), size / (y1 - y0)


def crop_affine(crop_box_xyxy, size):
    """
    (2, 3) float64 matrix of the scale + translation taking image pixel indices to crop pixel indices (cv2's
    convention: pixel centres at integers), i.e. continuous X ↦ U = s_x·(X − x0) with s_x = size / (x1 − x0), same
    for y. ``cv2.warpAffine(image, M, (size, size))`` produces the crop; with ``cv2.WARP_INVERSE_MAP`` and the image's
    (W, H) it pastes a crop-sized map back.
    """
    b = _as_box(crop_box_xyxy, "crop_box_xyxy")
    sx, sy = _scales(b, _check_size(size))
    return np.array([[sx, 0.0, sx * (0.5 - b[0]) - 0.5],
                     [0.0, sy, sy * (0.5 - b[1]) - 0.5]], dtype=np.float64)


def _box_label(box, size):
    """(size, size) bool: crop pixels whose centre lies in the half-open box [u0, u1) × [v0, v1)."""
    c0, r0, c1, r1 = (min(max(math.ceil(v - 0.5), 0), size) for v in box)
    label = np.zeros((size, size), dtype=bool)
    label[r0:r1, c0:c1] = True
    return label


def crop_box_sample(image, gt_box_xyxy, crop_box_xyxy, size=288):
    """
    A box-supervised training sample (§3.2.2): the crop box's region resized to size×size, and the GT box as a label.

    One ``cv2.warpAffine`` (bilinear, :func:`crop_affine`) makes the crop; the part of the crop box outside the image
    is filled with 0. The GT box goes through the same map and is rasterised by pixel centres: crop pixel (v, u) is in
    the label iff (u + ½, v + ½) lies in the projected box, half-open on the right/bottom, clipped to the crop.

    A GT box that misses the crop box (impossible with :func:`augment_box`'s defaults, where the crop centre stays in
    the GT box) gives an **all-False** label: check ``label.any()`` before using the sample.

    Args:
        image (ndarray): (H, W, 3), e.g. uint8.
        gt_box_xyxy, crop_box_xyxy: (4,) XYXY; the crop box must have positive width and height.
        size (int): side of the crop (288 for training).

    Returns:
        (ndarray, ndarray[bool]): crop (size, size, 3) of the image's dtype, label (size, size).
    """
    _check_image(image)
    size = _check_size(size)
    crop_box = _as_box(crop_box_xyxy, "crop_box_xyxy")
    gx0, gy0, gx1, gy1 = _as_box(gt_box_xyxy, "gt_box_xyxy")
    sx, sy = _scales(crop_box, size)
    crop = cv2.warpAffine(np.ascontiguousarray(image), crop_affine(crop_box, size), (size, size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    cx0, cy0 = crop_box[0], crop_box[1]
    projected = (sx * (gx0 - cx0), sy * (gy0 - cy0), sx * (gx1 - cx0), sy * (gy1 - cy0))
    return crop, _box_label(projected, size)


def tight_box_label(mask):
    """(h, w) bool: the filled tight box of a boolean mask (all False for an empty mask)."""
    label = np.zeros(np.shape(mask), dtype=bool)
    box = mask_tight_box(mask)
    if box is not None:
        x0, y0, x1, y1 = box.astype(int)
        label[y0:y1, x0:x1] = True
    return label


def salient_sample(image, mask, rng, resize=320, crop=288, flip=True):
    """
    A salient training sample (§3.2.2): resize image and mask to resize×resize (bilinear / nearest), take a random
    crop×crop window, flip both horizontally with probability ½.

    Args:
        image (ndarray): (H, W, 3). mask (ndarray): (H, W) bool or {0, 1}.
        rng (numpy.random.Generator): draws, in order, the window's top and left (integers), then the flip (one uniform
            draw, only when ``flip``).
        resize (int), crop (int): 320 and 288 in the paper; crop ≤ resize.

    Returns:
        (ndarray, ndarray[bool], ndarray[bool]): image (crop, crop, 3), mask (crop, crop), and the MIL box label
        (crop, crop) = the filled tight box of the cropped mask (all False if the crop holds no mask pixel).
    """
    _check_image(image)
    mask = np.asarray(mask)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image {image.shape[:2]}")
    resize, crop = _check_size(resize, "resize"), _check_size(crop, "crop")
    if crop > resize:
        raise ValueError(f"crop ({crop}) must not exceed resize ({resize})")
    img = cv2.resize(np.ascontiguousarray(image), (resize, resize), interpolation=cv2.INTER_LINEAR)
    m = cv2.resize(mask.astype(np.uint8), (resize, resize), interpolation=cv2.INTER_NEAREST) > 0
    top, left = (int(v) for v in rng.integers(0, resize - crop + 1, size=2))
    img, m = img[top:top + crop, left:left + crop], m[top:top + crop, left:left + crop]
    if flip and rng.random() < 0.5:
        img, m = img[:, ::-1], m[:, ::-1]
    img, m = np.ascontiguousarray(img), np.ascontiguousarray(m)
    return img, m, tight_box_label(m)


def proxy_crop(image, box_xyxy, size=320):
    """
    The inference input for one GT box (§3.4): the box, without jitter, resized to size×size. The box is taken at its
    integer pixel extent (:func:`wsis.core.boxes.pixel_extent`: rounded, at least one pixel, clipped to
    the image), the same extent :func:`paste_crop_map` pastes into, so crop and paste are exact inverses.

    Returns:
        (ndarray, ndarray): crop (size, size, 3) and the (2, 3) image→crop affine of that pixel extent
        (:func:`crop_affine`).
    """
    _check_image(image)
    size = _check_size(size)
    x0, y0, x1, y1 = pixel_extent(_as_box(box_xyxy, "box_xyxy"), *image.shape[:2])
    crop = cv2.resize(np.ascontiguousarray(image[y0:y1, x0:x1]), (size, size), interpolation=cv2.INTER_LINEAR)
    return crop, crop_affine((x0, y0, x1, y1), size)


def resize_to_box(prob, box_xyxy, image_hw):
    """
    A crop-sized map (e.g. the fused probability of a :func:`proxy_crop` input) resized to its box's pixel extent
    (:func:`wsis.core.boxes.pixel_extent`), bilinear ``cv2.resize``.

    Args:
        prob (ndarray): (h, w) float map of the crop.
        box_xyxy: (4,) the box given to :func:`proxy_crop`.
        image_hw ((int, int)): (H, W) of the image.

    Returns:
        ((x0, y0, x1, y1), ndarray): the pixel extent and the (y1 - y0, x1 - x0) map, float32 (float64 for a float64
        map).
    """
    prob = np.asarray(prob)
    if prob.ndim != 2 or prob.size == 0:
        raise ValueError(f"prob must be a non-empty (h, w) map, got shape {prob.shape}")
    prob = prob.astype(np.float64 if prob.dtype == np.float64 else np.float32)
    height, width = (_check_size(v, "image_hw") for v in image_hw)
    x0, y0, x1, y1 = pixel_extent(_as_box(box_xyxy, "box_xyxy"), height, width)
    return (x0, y0, x1, y1), cv2.resize(prob, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)


def paste_crop_map(prob, box_xyxy, image_hw):
    """
    Paste a crop-sized map back into the image: :func:`resize_to_box`, zeros elsewhere.

    Returns:
        ndarray: (H, W) float32 (float64 for a float64 map).
    """
    (x0, y0, x1, y1), resized = resize_to_box(prob, box_xyxy, image_hw)
    out = np.zeros((int(image_hw[0]), int(image_hw[1])), dtype=resized.dtype)
    out[y0:y1, x0:x1] = resized
    return out
