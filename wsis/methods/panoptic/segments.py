"""
The panoptic output of the instance CRF (WSPS §3.5): the MAP labelling gives every pixel exactly one segment (no
overlaps by construction); thing segments are rescored by the mean semantic probability of their class over their
mask; stuff labels become one segment per class. The result has the form of Detectron2's PanopticFPN output:
``(id map (H, W) int32, segments_info)``, id 0 = void.
"""
import torch
import torch.nn.functional as F

__all__ = ["panoptic_from_marginals"]


def panoptic_from_marginals(marginals, labels, q, out_size=None, min_area=0):
    """
    Args:
        marginals (Tensor): (L, h, w) the CRF's marginals. labels (DetectionLabels): their classes, scores, stuff.
        q (Tensor): (C, h, w) semantic probabilities (for the rescoring).
        out_size (tuple or None): (H, W) to upsample to (bilinear) before the arg max; None keeps (h, w).
        min_area (int): labels with fewer pixels become void (0).

    Returns:
        (Tensor, list[dict]): (H, W) int32 segment ids 1..S (0 void) and ``segments_info``: ``id``,
        ``category_id`` (Q's channel), ``isthing``, ``score`` (things: mean Q of the class over the mask; stuff: 1),
        ``label`` (index of the CRF label).
    """
    if marginals.shape[0] != len(labels):
        raise ValueError(f"{marginals.shape[0]} marginals for {len(labels)} labels")
    if out_size is not None and tuple(out_size) != tuple(marginals.shape[-2:]):
        marginals = F.interpolate(marginals[None], size=tuple(out_size), mode="bilinear", align_corners=False)[0]
        q = F.interpolate(q[None], size=tuple(out_size), mode="bilinear", align_corners=False)[0]
    h, w = marginals.shape[-2:]
    ids = torch.zeros((h, w), dtype=torch.int32, device=marginals.device)
    if len(labels) == 0:
        return ids, []
    owner = marginals.argmax(0)
    info = []
    for k in range(len(labels)):
        mask = owner == k
        area = int(mask.sum())
        if area == 0 or area < min_area:
            continue
        c = int(labels.classes[k])
        stuff = bool(labels.is_stuff[k])
        score = 1.0 if stuff else float(q[c][mask].mean())
        ids[mask] = len(info) + 1
        info.append({"id": len(info) + 1, "category_id": c, "isthing": not stuff, "score": score, "label": k})
    return ids, info
