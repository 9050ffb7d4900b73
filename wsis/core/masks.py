"""The one RLE codec of wsis, and mask-format helpers (stores, metrics, converters).

Segmentations arrive in the three COCO forms plus plain arrays:

- ``HxW`` bool / 0-1 integer ``np.ndarray``;
- compressed RLE ``{"size": [H, W], "counts": str | bytes}``;
- uncompressed RLE ``{"size": [H, W], "counts": [int, ...]}``;
- polygons ``[[x0, y0, x1, y1, ...], ...]`` (need the image size).

Everything is normalised to a compressed RLE whose ``counts`` is a ``str`` (JSON- and pickle-friendly), which is what
``pycocotools.mask`` functions accept.
"""
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util

__all__ = ["encode_mask", "decode_mask", "to_rle", "to_rles", "rle_shape", "to_bool_mask", "segmentation_shape"]


def encode_mask(mask: Any) -> Dict[str, Any]:
    """Encode an (H, W) mask (non-zero = foreground) as ``{"size": [H, W], "counts": str}`` (compressed RLE)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"encode_mask expects an HxW mask, got shape {mask.shape}")
    rle = mask_util.encode(np.asfortranarray(mask != 0, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def _to_pycocotools(rle: Dict[str, Any]) -> Dict[str, Any]:
    """The RLE in the form pycocotools' C code takes: compressed, bytes counts."""
    counts = rle["counts"]
    if isinstance(counts, (list, tuple)):  # uncompressed RLE, as in COCO crowd annotations
        height, width = rle_shape(rle)
        return mask_util.frPyObjects(dict(rle, counts=list(counts)), height, width)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [int(v) for v in rle["size"]], "counts": counts}


def decode_mask(rle: Dict[str, Any]) -> np.ndarray:
    """Decode an RLE (counts as str, bytes or an uncompressed list) to an (H, W) bool ndarray."""
    with warnings.catch_warnings():  # pycocotools < 2.0.9 under numpy 2 warns inside decode; harmless
        warnings.filterwarnings("ignore", message=".*__array__ implementation", category=DeprecationWarning)
        return mask_util.decode(_to_pycocotools(rle)).astype(bool)


def segmentation_shape(segm: Any) -> Optional[Tuple[int, int]]:
    """``(H, W)`` of an array or RLE segmentation, ``None`` for polygons (they carry no size)."""
    if isinstance(segm, np.ndarray):
        if segm.ndim != 2:
            raise ValueError(f"A mask array must be HxW, got shape {segm.shape}")
        return (int(segm.shape[0]), int(segm.shape[1]))
    if isinstance(segm, dict):
        return rle_shape(segm)
    if isinstance(segm, (list, tuple)):
        return None
    raise TypeError(f"Unsupported segmentation type {type(segm).__name__}; expected ndarray, RLE dict or polygons")


def rle_shape(rle: Dict[str, Any]) -> Tuple[int, int]:
    """``(H, W)`` of an RLE dict (its ``"size"`` field)."""
    if "size" not in rle or "counts" not in rle:
        raise ValueError(f"An RLE dict needs 'size' and 'counts' keys, got keys {sorted(rle)}")
    h, w = rle["size"]
    return (int(h), int(w))


def to_rle(segm: Any, height: Optional[int] = None, width: Optional[int] = None) -> Dict[str, Any]:
    """Convert any supported segmentation to a compressed RLE with ``str`` counts.

    Args:
        segm: ``HxW`` array (non-zero = foreground), RLE dict (compressed or not) or list of polygons.
        height, width: image size; required for polygons, checked against the mask's own size otherwise.

    Returns:
        ``{"size": [H, W], "counts": str}``.
    """
    if isinstance(segm, np.ndarray):
        _check_size(segmentation_shape(segm), height, width)
        return encode_mask(segm)
    if isinstance(segm, dict):
        _check_size(rle_shape(segm), height, width)
        rle = _to_pycocotools(segm)
    elif isinstance(segm, (list, tuple)):
        if height is None or width is None:
            raise ValueError("Polygon segmentations need the image height and width")
        polys = [np.asarray(p, dtype=np.float64).ravel().tolist() for p in segm]
        polys = [p for p in polys if len(p) >= 6]
        if not polys:
            return to_rle(np.zeros((height, width), dtype=bool))
        rle = mask_util.merge(mask_util.frPyObjects(polys, height, width))
    else:
        raise TypeError(f"Unsupported segmentation type {type(segm).__name__}; expected ndarray, RLE dict or polygons")
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


def to_bool_mask(segm: Any, height: Optional[int] = None, width: Optional[int] = None) -> np.ndarray:
    """Decode any supported segmentation to an ``HxW`` bool array."""
    if isinstance(segm, np.ndarray):
        _check_size(segmentation_shape(segm), height, width)
        return segm != 0
    return decode_mask(to_rle(segm, height, width))


def to_rles(segms: Sequence[Any], height: Optional[int], width: Optional[int]) -> List[Dict[str, Any]]:
    """:func:`to_rle` over a list."""
    return [to_rle(s, height, width) for s in segms]


def _check_size(shape: Tuple[int, int], height: Optional[int], width: Optional[int]) -> None:
    if height is not None and width is not None and tuple(shape) != (int(height), int(width)):
        raise ValueError(f"Mask shape {tuple(shape)} does not match the image shape {(int(height), int(width))}")
