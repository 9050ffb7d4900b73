"""
The next round's panoptic label from the network's output on a training image (WSPS §3.4, "Iterative ground truth
approximation"): the output becomes the label, except where the weak annotations say it cannot be right.

* **A thing pixel outside every box of its class is ignored** (the paper's rule: a thing cannot lie outside its
  box). A thing segment of a class the image has no box of is ignored whole.
* **A stuff segment of a class the image is not tagged with is ignored** (wsis's rule, by the same argument: the
  stuff labels come from the image's tags, so an untagged stuff class cannot be in the image). The paper states
  no stuff rule; with its Cityscapes tags it would change nothing where the tags are complete.
* The paper also post-processes the output with DenseCRF (DeepLab's parameters); the output of
  ``WSPSPanopticNetwork`` has been through the instance CRF already, and wsis adds none.

Pure NumPy; the job that runs a model over the training set is :mod:`.round_job`.
"""
import numpy as np

from wsis.core.boxes import pixel_extent
from wsis.core.panoptic import VOID_ID

__all__ = ["refine_panoptic_label"]


def refine_panoptic_label(ids, segments, boxes, box_classes, tags, isthing):
    """
    Args:
        ids (ndarray): (H, W) int segment ids of the output (0 void).
        segments (list[dict]): its ``segments_info`` (``id``, ``category_id`` contiguous; other keys are kept).
        boxes (ndarray): (N, 4) x0, y0, x1, y1 of the image's thing boxes (image pixels). box_classes: (N,).
        tags (iterable[int]): the image's stuff tags (contiguous classes); thing tags may be included.
        isthing (Mapping[int, bool]): class → thing or stuff.

    Returns:
        (ndarray, list[dict]): int32 ids 1..S (0 void: ignored in training) and the kept segments, each with
        ``area``; segments left without a pixel are dropped.
    """
    ids = np.asarray(ids)
    h, w = ids.shape
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    box_classes = np.asarray(box_classes, np.int64).reshape(-1)
    if len(boxes) != len(box_classes):
        raise ValueError(f"{len(boxes)} boxes for {len(box_classes)} classes")
    tags = {int(t) for t in tags}
    inside = {}
    for box, c in zip(boxes, box_classes):
        x0, y0, x1, y1 = pixel_extent(box, h, w)
        region = inside.setdefault(int(c), np.zeros((h, w), bool))
        region[y0:y1, x0:x1] = True
    out = np.full((h, w), VOID_ID, np.int32)
    nowhere = np.zeros((h, w), bool)
    kept = []
    for s in segments:
        c = int(s["category_id"])
        if c not in isthing:
            raise ValueError(f"segment {s['id']}: class {c} is neither a thing nor a stuff class")
        mask = ids == s["id"]
        if isthing[c]:
            mask &= inside.get(c, nowhere)
        elif c not in tags:
            continue
        if mask.any():
            kept.append(dict(s, id=len(kept) + 1, isthing=bool(isthing[c]), area=int(mask.sum())))
            out[mask] = kept[-1]["id"]
    return out, kept
