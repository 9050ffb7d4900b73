"""
CCGR's pseudo instance labels ("After CCGR, we directly crop the segmentation map with the refined boxes as the
pseudo instance labels"): the pixels of a box whose arg max class in the segmentation map is the box's class. The
paper does not say what happens where boxes overlap; wsis gives such a pixel to the smallest box (the library's
merge rule, :func:`wsis.core.merge.paint_smallest_last`).
"""
import numpy as np

from wsis.core.boxes import pixel_extent
from wsis.core.merge import paint_smallest_last

__all__ = ["box_masks"]


def box_masks(label_map, boxes, classes):
    """
    Args:
        label_map (ndarray): (H, W) int arg max class of the segmentation map (its own class ids; e.g. 0 background,
            class + 1 for a head with background first: pass ``classes + 1`` then).
        boxes (ndarray): (N, 4) x1, y1, x2, y2 in pixels (refined boxes). classes (ndarray): (N,) their classes.

    Returns:
        ndarray[bool]: (N, H, W) disjoint masks; an empty one where the box holds no pixel of its class.
    """
    label_map = np.asarray(label_map)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    classes = np.asarray(classes).reshape(-1)
    if len(boxes) != len(classes):
        raise ValueError(f"{len(boxes)} boxes for {len(classes)} classes")
    h, w = label_map.shape
    masks = np.zeros((len(boxes), h, w), bool)
    for i, (box, c) in enumerate(zip(boxes, classes)):
        x0, y0, x1, y1 = pixel_extent(box, h, w)
        masks[i, y0:y1, x0:x1] = label_map[y0:y1, x0:x1] == c
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return paint_smallest_last(masks, areas)
