"""
Boxes, written once for the whole library (detectron2-free).

Coordinates are continuous: pixel (y, x) covers [x, x + 1) × [y, y + 1). Annotations carry Detectron2's ``bbox`` and
``bbox_mode`` (``BoxMode`` values: 0 = XYXY_ABS, 1 = XYWH_ABS, the COCO default when absent); every consumer turns
them into float XYXY with :func:`annotation_box` and, where it needs pixels, into the integer **pixel extent** of
:func:`pixel_extent`: the pixels a mask of that box may occupy. A pseudo mask is pasted into the pixel extent of its
box, so anything that compares a mask with its box (BoxCaseg's drop rule) compares it with that extent.
"""
import numpy as np

XYXY_ABS, XYWH_ABS = 0, 1  # detectron2.structures.BoxMode values

__all__ = ["XYXY_ABS", "XYWH_ABS", "as_xyxy", "annotation_box", "annotation_extent", "xyxy_to_xywh", "pixel_extent",
           "box_iou_matrix", "mask_tight_box"]


def as_xyxy(bbox, bbox_mode=XYWH_ABS):
    """
    Args:
        bbox: 4 numbers in ``bbox_mode``. bbox_mode (int): 0 (XYXY_ABS) or 1 (XYWH_ABS); relative and rotated modes
            are refused.

    Returns:
        ndarray[float64]: (4,) x0, y0, x1, y1.
    """
    b = np.asarray(bbox, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or not np.all(np.isfinite(b)):
        raise ValueError(f"a box must be 4 finite numbers, got {bbox!r}")
    mode = int(getattr(bbox_mode, "value", bbox_mode))
    if mode == XYWH_ABS:
        return np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]])
    if mode == XYXY_ABS:
        return b
    raise ValueError(f"bbox_mode {bbox_mode!r} is not supported (use XYXY_ABS = 0 or XYWH_ABS = 1)")


def annotation_box(ann, where=""):
    """(4,) float XYXY box of a Detectron2 annotation dict, honouring its ``bbox_mode`` (default XYWH_ABS).
    ``where`` (e.g. the file name) prefixes the error message, which names the annotation id."""
    try:
        return as_xyxy(ann["bbox"], ann.get("bbox_mode", XYWH_ABS))
    except (KeyError, ValueError) as e:
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}annotation id {ann.get('id')}: {e}") from None


def xyxy_to_xywh(box):
    """[x0, y0, x1, y1] → [x, y, w, h] (plain floats, as the pseudo-mask store writes boxes)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def pixel_extent(box_xyxy, height, width, rounding="nearest"):
    """
    The integer pixel range of a float XYXY box: columns ``[x0', x1')``, rows ``[y0', y1')``, clipped to the image,
    at least one pixel wide and high.

    Args:
        rounding (str): "nearest" rounds each edge to the closest pixel border (a box edge at 10.3 starts at pixel
            10, one at 10.6 at pixel 11): the pixels a pseudo mask of the box is pasted into. "outward" takes every
            pixel the box touches (floor / ceil), for crops that must contain the whole box.

    Returns:
        (int, int, int, int): x0, y0, x1, y1, exclusive on the right/bottom.
    """
    x0, y0, x1, y1 = as_xyxy(box_xyxy, XYXY_ABS)
    if rounding == "nearest":
        lo, hi = (lambda v: int(round(v))), (lambda v: int(round(v)))
    elif rounding == "outward":
        lo, hi = (lambda v: int(np.floor(v))), (lambda v: int(np.ceil(v)))
    else:
        raise ValueError(f"rounding must be 'nearest' or 'outward', got {rounding!r}")
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    px0 = min(max(lo(x0), 0), width - 1)
    py0 = min(max(lo(y0), 0), height - 1)
    px1 = min(max(hi(x1), px0 + 1), width)
    py1 = min(max(hi(y1), py0 + 1), height)
    return px0, py0, px1, py1


def annotation_extent(ann, height, width):
    """:func:`pixel_extent` of an annotation's box (:func:`annotation_box`) in an image of ``height`` × ``width``."""
    return pixel_extent(annotation_box(ann), height, width)


def box_iou_matrix(boxes, others=None):
    """(N, 4) XYXY boxes (and (M, 4) ``others``, default the same) → (N, M) IoU; 0 where a union has no area."""
    a = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    b = a if others is None else np.asarray(others, dtype=np.float64).reshape(-1, 4)
    x0, y0 = np.maximum(a[:, None, 0], b[None, :, 0]), np.maximum(a[:, None, 1], b[None, :, 1])
    x1, y1 = np.minimum(a[:, None, 2], b[None, :, 2]), np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def mask_tight_box(mask):
    """(4,) float64 XYXY tight box of a boolean (H, W) mask (in pixel borders: integers); None if it is empty."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float64)
