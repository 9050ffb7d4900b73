"""The COCO panoptic PNG codec: segment id = R + 256 G + 65536 B, 0 = void / unlabelled."""
import numpy as np

__all__ = ["VOID_ID", "panoptic_rgb_to_id", "panoptic_id_to_rgb"]

#: Segment id of void / unlabelled pixels (COCO panoptic format).
VOID_ID = 0
_OFFSET = 256 * 256 * 256  # ids fit in 24 bits (three 8-bit channels); also the pair key of PQ overlaps


def panoptic_rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """Decode a COCO panoptic PNG: ``HxWx3`` uint8 (R, G, B) -> ``HxW`` int64 ids, id = R + 256 G + 65536 B."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"Expected an HxWx3 RGB array, got shape {rgb.shape}")
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def panoptic_id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Inverse of :func:`panoptic_rgb_to_id`: ``HxW`` ids in [0, 2^24) -> ``HxWx3`` uint8."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= _OFFSET):
        raise ValueError(f"Panoptic ids must lie in [0, {_OFFSET}), got range [{ids.min()}, {ids.max()}]")
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)
