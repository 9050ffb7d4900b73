"""Resolve overlapping instance masks of one image: "smaller object better" (BoxCaseg §3.2, proxy-mask merge)."""
import numpy as np


def smallest_last_order(areas):
    """
    Indices that paint instances from the largest to the smallest ``areas`` ((N,) sizes); among equal areas the
    later index comes later (so it wins), independently of sort stability.
    """
    areas = np.asarray(areas, dtype=np.float64).reshape(-1)
    return np.lexsort((np.arange(areas.size), -areas))


def paint_smallest_last(masks, areas=None):
    """
    Make instance masks disjoint: instances are painted from the largest to the smallest, so where several
    overlap the smallest one wins (BoxCaseg's official merge paints larger boxes first). Ties keep input order
    (the later instance wins), so the result does not depend on sort stability.

    Args:
        masks (ndarray[bool]): (N, H, W) possibly overlapping masks.
        areas (ndarray or None): (N,) sizes that decide the order (e.g. box areas); default: mask areas.

    Returns:
        ndarray[bool]: (N, H, W) disjoint masks; each is a subset of its input mask.
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {masks.shape}")
    n = masks.shape[0]
    if n == 0:
        return masks.copy()
    areas = masks.reshape(n, -1).sum(1) if areas is None else np.asarray(areas, dtype=np.float64)
    if areas.shape != (n,):
        raise ValueError(f"areas must have shape ({n},), got {areas.shape}")
    owner = np.full(masks.shape[1:], -1, dtype=np.int64)
    for i in smallest_last_order(areas):
        owner[masks[i]] = i
    return owner[None] == np.arange(n)[:, None, None]
