"""
Whole-image box proposals for CCGR's bags from the library's Selective-Search-style grouping
(:func:`wsis.methods.wsps.proposals.region_hierarchy`; the paper uses MCG, MATLAB code whose ranking is trained on
VOC masks): every region of every strategy's hierarchy gives its box, duplicates removed.

MCG ranks its proposals by a learned objectness, B_S of Eq. 4; Selective Search has none. wsis scores a region by
its **fill**, the region's pixels over its box's area (a segment that fills its box looks like one object; one
that snakes through a large box does not). This is wsis's choice; the paper is silent on proposals without MCG.
"""
import numpy as np

from wsis.methods.wsps.proposals import felzenszwalb_superpixels, region_hierarchy, to_colour_space

__all__ = ["selective_search_boxes", "STRATEGIES"]

#: (colour space, Felzenszwalb scale) of each hierarchy, the WSPS generator's three.
STRATEGIES = (("lab", 100), ("hsv", 100), ("rgb", 200))


def selective_search_boxes(image_bgr, strategies=STRATEGIES, sigma=0.8, min_size=20, min_box=4):
    """
    Args:
        image_bgr (ndarray): (H, W, 3) uint8 BGR image.
        strategies: (colour space, Felzenszwalb scale) pairs, one hierarchy each.
        sigma, min_size: Felzenszwalb's smoothing and smallest superpixel (pixels).
        min_box (int): boxes narrower or lower than this many pixels are dropped.

    Returns:
        (ndarray, ndarray): (P, 4) float32 boxes x0, y0, x1, y1 (exclusive) sorted by decreasing score, and (P,)
        float32 scores (fill; the best of a box's regions when several share it).
    """
    best = {}
    for space, k in strategies:
        img = to_colour_space(image_bgr, space)
        labels = felzenszwalb_superpixels(img, k, sigma, min_size)
        boxes, size, _ = region_hierarchy(img, labels)
        fill = size / np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1)
        for box, f in zip(map(tuple, boxes.tolist()), fill.tolist()):
            if box[2] - box[0] >= min_box and box[3] - box[1] >= min_box and f > best.get(box, -1.0):
                best[box] = f
    if not best:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    order = sorted(best, key=lambda b: (-best[b], b))
    return np.asarray(order, np.float32), np.asarray([best[b] for b in order], np.float32)
