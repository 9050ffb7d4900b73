"""
WSPS §3.2 fusion (Fig. 2): two foreground estimates per box → semantic and instance pseudo labels with ignore.

Per box, inside the box: both estimates foreground → FG; they disagree → UNSURE; both background → BG.
Outside its box a box has no opinion. Per pixel:

1. The *deciding box* is the smallest box (by area; equal areas: the later one) that says FG or UNSURE there, the
   "smaller object wins" precedence of WSPS §3.3 and BoxCaseg: a small box inside a large one is usually in front.
2. Semantic label: no deciding box → background; deciding box UNSURE → ignore; FG → its class.
   ``cross_class="ignore"`` instead ignores every pixel where boxes of two or more classes say FG or UNSURE.
3. Instances: a pixel of class k belongs to the one box of class k that says FG there; where two or more boxes of
   class k say FG it is ignored for those instances (WSPS: "not enough information to attribute it to either
   instance"), while its semantic label stays k.
4. Crowd boxes (``iscrowd``) get no instance; their pixels without a deciding box are ignored, not background.

Labels: semantic maps use 0 = background, ``class + 1`` for classes and :data:`IGNORE` (255).
"""
from dataclasses import dataclass

import numpy as np

from wsis.core.merge import smallest_last_order

IGNORE = 255
BG, UNSURE, FG = 0, 1, 2


def box_states(estimate_a, estimate_b):
    """Two (h, w) bool foreground estimates over a box's pixels → (h, w) uint8 states BG / UNSURE / FG."""
    a, b = np.asarray(estimate_a, dtype=bool), np.asarray(estimate_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"the two estimates of a box must have one shape, got {a.shape} and {b.shape}")
    return (a.astype(np.uint8) + b.astype(np.uint8)).astype(np.uint8)


@dataclass
class Fusion:
    """
    semantic: (H, W) uint8, 0 background, ``class + 1``, 255 ignore. masks: (N, H, W) bool disjoint instance masks.
    instance_ignore: (N, H, W) bool, same-class overlaps. image_ignore: (H, W) bool (= semantic == 255).
    """

    semantic: np.ndarray
    masks: np.ndarray
    instance_ignore: np.ndarray
    image_ignore: np.ndarray


def fuse(shape, boxes, classes, states, cross_class="smallest", crowd_boxes=()):
    """
    Args:
        shape (tuple): (H, W) of the image.
        boxes (list[tuple[int]]): (x0, y0, x1, y1) pixel ranges (exclusive ends) of the N non-crowd boxes.
        classes (list[int]): contiguous class of each box.
        states (list[ndarray]): (y1 - y0, x1 - x0) uint8 BG / UNSURE / FG per box (:func:`box_states`).
        cross_class (str): "smallest" or "ignore": the rule where boxes of different classes claim a pixel.
        crowd_boxes (list[tuple[int]]): pixel ranges of crowd regions.

    Returns:
        Fusion
    """
    if cross_class not in ("smallest", "ignore"):
        raise ValueError(f"cross_class must be 'smallest' or 'ignore', got {cross_class!r}")
    if not len(boxes) == len(classes) == len(states):
        raise ValueError(f"got {len(boxes)} boxes, {len(classes)} classes and {len(states)} state maps")
    h, w = shape
    n = len(boxes)
    decider = np.full((h, w), -1, dtype=np.int64)
    decider_state = np.zeros((h, w), dtype=np.uint8)
    for i in smallest_last_order([(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes]):
        x0, y0, x1, y1 = boxes[i]
        s = states[i]
        if s.shape != (y1 - y0, x1 - x0):
            raise ValueError(f"box {i}: states have shape {s.shape}, the box is {(y1 - y0, x1 - x0)}")
        opinion = s != BG
        decider[y0:y1, x0:x1][opinion] = i
        decider_state[y0:y1, x0:x1][opinion] = s[opinion]
    cls = np.asarray(classes, dtype=np.int64)
    semantic = np.zeros((h, w), dtype=np.uint8)
    has = decider >= 0
    semantic[has] = (cls[decider[has]] + 1).astype(np.uint8)
    semantic[has & (decider_state == UNSURE)] = IGNORE
    if cross_class == "ignore" and n:
        first = np.full((h, w), -1, dtype=np.int64)
        mixed = np.zeros((h, w), dtype=bool)
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            opinion = states[i] != BG
            f = first[y0:y1, x0:x1]
            mixed[y0:y1, x0:x1] |= opinion & (f >= 0) & (f != cls[i])
            f[opinion & (f < 0)] = cls[i]
        semantic[mixed] = IGNORE
    for x0, y0, x1, y1 in crowd_boxes:
        region = semantic[y0:y1, x0:x1]
        region[~has[y0:y1, x0:x1]] = IGNORE

    masks, instance_ignore = split_instances(semantic, boxes, cls, [s == FG for s in states])
    return Fusion(semantic, masks, instance_ignore, semantic == IGNORE)


def split_instances(semantic, boxes, classes, claims):
    """
    Instance masks from a semantic map: box i owns the pixels of its box that it claims and that carry its class
    (``semantic == class + 1``); a pixel claimed by two or more boxes of one class goes to none of them and is
    ignored for each instead.

    Args:
        semantic (ndarray): (H, W) uint8, 0 / class + 1 / :data:`IGNORE`.
        boxes: N (x0, y0, x1, y1) pixel ranges. classes: N contiguous classes.
        claims: N (y1 - y0, x1 - x0) bool maps of the pixels each box claims, or True for its whole box.

    Returns:
        (masks (N, H, W) bool, instance_ignore (N, H, W) bool)
    """
    h, w = semantic.shape
    count = {}  # class -> (H, W) number of boxes of that class claiming the pixel
    for (x0, y0, x1, y1), c, claim in zip(boxes, classes, claims):
        count.setdefault(int(c), np.zeros((h, w), dtype=np.int32))[y0:y1, x0:x1] += claim
    masks = np.zeros((len(boxes), h, w), dtype=bool)
    instance_ignore = np.zeros_like(masks)
    for i, ((x0, y0, x1, y1), c, claim) in enumerate(zip(boxes, classes, claims)):
        mine = claim & (semantic[y0:y1, x0:x1] == c + 1)
        shared = count[int(c)][y0:y1, x0:x1] >= 2
        masks[i, y0:y1, x0:x1] = mine & ~shared
        instance_ignore[i, y0:y1, x0:x1] = mine & shared
    return masks, instance_ignore
