"""
Panoptic pseudo labels of WSPS's iteration 0 (§3.2, §3.3): things from their boxes, stuff from image tags.

Things: the instance masks a box generator made (wsis's vote or WSPS's fusion, :mod:`wsis.methods.wsps`), each its
own segment; its ignore pixels stay ignored. Stuff: the stuff classes' localisation cues (Grad-CAM in the paper)
thresholded at 50 % of each map's max, the smaller area winning overlaps, uncovered pixels ignored
(:func:`wsis.methods.cam.labels.wsps_labels` with ``rest="ignore"``); a stuff class becomes one segment, and only
where no thing claims the pixel (a box is stronger evidence than a tag).
"""
import numpy as np

__all__ = ["assemble_panoptic", "VOID"]

#: the id of void (ignored) pixels in the panoptic id map, as in COCO's panoptic format
VOID = 0


def assemble_panoptic(thing_masks, thing_classes, thing_ignore, stuff_labels):
    """
    Args:
        thing_masks (ndarray): (N, H, W) bool disjoint instance masks (empty ones are left out).
        thing_classes (sequence[int]): (N,) category of each.
        thing_ignore (ndarray or None): (H, W) bool pixels the box labels ignore (doubt, crowd, overlaps).
        stuff_labels (ndarray): (H, W) int stuff label map: category + 1, 0 nothing, 255 ignore
            (:func:`wsis.methods.cam.labels.wsps_labels` of the stuff classes' cues; the classes as categories).

    Returns:
        (ids, segments): (H, W) int32 segment ids (0 void) and ``[{"id", "category_id", "isthing", "area"}]``.
    """
    thing_masks = np.asarray(thing_masks, dtype=bool)
    stuff_labels = np.asarray(stuff_labels)
    if thing_masks.ndim != 3 or thing_masks.shape[1:] != stuff_labels.shape:
        raise ValueError(f"thing masks (N, H, W) {thing_masks.shape} and stuff labels (H, W) {stuff_labels.shape} "
                         "do not agree")
    if len(thing_classes) != len(thing_masks):
        raise ValueError(f"{len(thing_masks)} thing masks for {len(thing_classes)} classes")
    if (thing_masks.sum(0) > 1).any():
        raise ValueError("thing masks overlap; resolve overlaps before assembling (e.g. the vote's smallest rule)")
    ids = np.zeros(stuff_labels.shape, dtype=np.int32)
    segments = []
    for mask, c in zip(thing_masks, thing_classes):
        if mask.any():
            segments.append({"id": len(segments) + 1, "category_id": int(c), "isthing": True,
                             "area": int(mask.sum())})
            ids[mask] = segments[-1]["id"]
    free = ids == VOID
    if thing_ignore is not None:
        free &= ~np.asarray(thing_ignore, dtype=bool)
    for label in np.unique(stuff_labels[free]):
        if label == 0 or label == 255:
            continue
        region = free & (stuff_labels == label)
        segments.append({"id": len(segments) + 1, "category_id": int(label) - 1, "isthing": False,
                         "area": int(region.sum())})
        ids[region] = segments[-1]["id"]
    return ids, segments
