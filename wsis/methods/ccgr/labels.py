"""
CCGR's pseudo labels between the branches (pure):

* :func:`ccgr_instances`, the instance branch's training labels: each MIL box refined by CCGR on its class's map of
  the segmentation branch (Eq. 2-3), then "we crop the segmentation map using the boxes"
  (:func:`~.instances.box_masks`); a box stops growing where it would hold a second peak of its class.
* :func:`instance_semantic_map`, the segmentation branch's labels from the second iteration on: "the unions of all
  instance masks of the same class from the IS branch" (overlaps to the smallest mask, the library's rule; the rest
  is background).
"""
import numpy as np
import torch

from wsis.core.masks import decode_mask
from wsis.core.semantic import semantic_map

from .instances import box_masks
from .refine import CCGRParams, refine_boxes

__all__ = ["ccgr_instances", "instance_semantic_map"]


def ccgr_instances(probs, boxes, classes, scores, params=CCGRParams(), peaks=None, peak_classes=None):
    """
    Args:
        probs (ndarray or Tensor): (K + 1, H, W) the segmentation branch's class probabilities at the image's size,
            background first (class c is channel c + 1).
        boxes (ndarray): (N, 4) the MIL boxes x1, y1, x2, y2 in image pixels. classes (ndarray): (N,) their classes.
        scores (ndarray): (N,) their scores (kept as the instances' scores).
        params (CCGRParams): the refinement. peaks (ndarray or None): (M, 2) x, y of the image's peaks and
            peak_classes (M,) their classes: a box stops before holding more peaks of its class than at its start
            (at least 1); None: no stop.

    Returns:
        list[dict]: per box ``{"category_id", "mask" (H, W) bool, "score", "box" (4,) refined}`` (a mask may be
        empty: the box holds no pixel of its class).
    """
    probs = torch.as_tensor(np.asarray(probs, np.float32))
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    classes = np.asarray(classes, np.int64).reshape(-1)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if probs.dim() != 3 or not len(boxes) == len(classes) == len(scores):
        raise ValueError(f"probs (K + 1, H, W) {tuple(probs.shape)}; {len(boxes)} boxes, {len(classes)} classes, "
                         f"{len(scores)} scores")
    if len(classes) and (classes.min() < 0 or classes.max() + 1 >= len(probs)):
        raise ValueError(f"box classes {sorted(set(classes.tolist()))} outside the map's {len(probs) - 1} classes")
    stops = None
    if peaks is not None:
        peaks = np.asarray(peaks, np.float32).reshape(-1, 2)
        peak_classes = np.asarray(peak_classes, np.int64).reshape(-1)
        own = [peaks[peak_classes == c] for c in classes]
        k = max([len(p) for p in own], default=0)
        stops = np.full((len(boxes), k, 2), np.nan, np.float32)
        for i, p in enumerate(own):
            stops[i, :len(p)] = p
    refined = refine_boxes(probs[torch.as_tensor(classes + 1)], torch.from_numpy(boxes), params,
                           None if stops is None else torch.from_numpy(stops)).numpy()
    masks = box_masks(probs.argmax(0).numpy(), refined, classes + 1)
    return [{"category_id": int(c), "mask": m, "score": float(s), "box": b}
            for c, m, s, b in zip(classes, masks, scores, refined)]


def instance_semantic_map(instances, height, width, score_thresh=0.5):
    """
    Args:
        instances (list[dict]): an image's predictions (:func:`wsis.data.predictions.read_predictions`: contiguous
            ``category_id``, ``score``, RLE ``segmentation``). score_thresh (float): the least score of a mask used.

    Returns:
        ndarray[uint8]: (H, W) 0 background, class + 1 on the union of the class's masks.
    """
    keep = [r for r in instances if r["score"] >= score_thresh and r.get("segmentation") is not None]
    masks = [decode_mask(r["segmentation"]).astype(bool) for r in keep]
    for r, m in zip(keep, masks):
        if m.shape != (height, width):
            raise ValueError(f"a {r['category_id']} mask of {m.shape[1]}x{m.shape[0]} for a {width}x{height} image")
    return semantic_map(masks, [r["category_id"] for r in keep], height, width, dtype=np.uint8)
