"""
The panoptic output of the instance CRF (WSPS §3.5): the MAP labelling gives every pixel exactly one segment (no
overlaps by construction); thing segments are rescored by the mean semantic probability of their class over their
mask; stuff labels become one segment per class. The result has the form of Detectron2's PanopticFPN output:
``(id map (H, W) int32, segments_info)``, id 0 = void.
"""
import math

import torch
import torch.nn.functional as F

__all__ = ["panoptic_from_marginals", "panoptic_from_owner", "resize_to_output", "owner_at_output"]


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
    return panoptic_from_owner(marginals.argmax(0) if len(labels) else None, labels, q, min_area,
                               tuple(marginals.shape[-2:]))


def panoptic_from_owner(owner, labels, q, min_area=0, size=None):
    """
    :func:`panoptic_from_marginals` from the MAP labelling itself.

    Args:
        owner (Tensor or None): (H, W) long index of each pixel's label (None when there is no label).
        labels (DetectionLabels), q (Tensor): (C, H, W), min_area: as :func:`panoptic_from_marginals`.
        size (tuple or None): (H, W) when ``owner`` is None.
    """
    h, w = owner.shape if owner is not None else size
    ids = torch.zeros((h, w), dtype=torch.int32, device=q.device)
    if len(labels) == 0:
        return ids, []
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


def resize_to_output(x, image_size, out_size, stride):
    """
    (L, h, w) maps on a padded input's grid at ``stride`` → (L, H, W) at the output size: the part of the grid
    that covers the input's ``image_size`` (the rest is padding) resized (bilinear) so that ``image_size`` becomes
    ``out_size`` (detectron2's ``sem_seg_postprocess`` for a map coarser than the input).
    """
    ih, iw = image_size
    oh, ow = out_size
    cells = (min(math.ceil(ih / stride), x.shape[-2]), min(math.ceil(iw / stride), x.shape[-1]))
    full = (max(oh, round(cells[0] * stride * oh / ih)), max(ow, round(cells[1] * stride * ow / iw)))
    x = F.interpolate(x[None, :, :cells[0], :cells[1]], size=full, mode="bilinear", align_corners=False)[0]
    return x[:, :oh, :ow]


def owner_at_output(marginals, image_size, out_size, stride, chunk=16):
    """
    The arg max label of :func:`resize_to_output`'s maps, ``chunk`` labels at a time (the memory of ``chunk``
    maps at the output size instead of all L); ties go to the first label, as ``argmax``.

    Returns:
        Tensor or None: (H, W) long; None without labels.
    """
    best = owner = None
    for start in range(0, len(marginals), chunk):
        value, index = resize_to_output(marginals[start:start + chunk], image_size, out_size, stride).max(0)
        if best is None:
            best, owner = value, index
        else:
            better = value > best
            best, owner = torch.where(better, value, best), torch.where(better, index + start, owner)
    return owner
