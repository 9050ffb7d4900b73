"""
The instance subnetwork's loss (WSPS §3.5, after Arnab & Torr): instance labels are only defined up to a
permutation, so the ground-truth instances are **matched** to the CRF's labels before the cross-entropy.

Matching: a ground-truth segment may only take a label of its own semantic class; among those, the assignment
(Hungarian, :func:`scipy.optimize.linear_sum_assignment`) maximises the summed soft IoU between the segment and the
label's marginal, |g ∩ Q_k| / (|g| + Σ Q_k − |g ∩ Q_k|) with |g ∩ Q_k| = Σ_{i∈g} Q_i(k). Each label serves at most one
segment; a segment without a label of its class is ignored (no loss), as are ignored pixels.
"""
import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

__all__ = ["match_segments", "matched_instance_loss"]


def match_segments(marginals, label_classes, segment_map, segment_classes, ignore_value=255):
    """
    Args:
        marginals (Tensor): (L, h, w) the CRF's marginals. label_classes (Tensor): (L,) class of each label.
        segment_map (Tensor): (h, w) long ground-truth segment index 0..G-1, ``ignore_value`` for ignored pixels.
        segment_classes (Tensor): (G,) class of each segment.

    Returns:
        Tensor: (G,) long, the label matched to each segment, −1 where none is.
    """
    g = int(segment_classes.numel())
    match = torch.full((g,), -1, dtype=torch.long)
    if g == 0 or marginals.shape[0] == 0:
        return match
    with torch.no_grad():
        valid = segment_map != ignore_value
        onehot = F.one_hot(segment_map.clamp(0, g - 1), g).permute(2, 0, 1).float() * valid
        q = marginals.float() * valid
        inter = torch.einsum("ghw,lhw->gl", onehot, q)
        union = onehot.sum((1, 2)).unsqueeze(1) + q.sum((1, 2)).unsqueeze(0) - inter
        iou = (inter / union.clamp_min(1e-6)).cpu().numpy()
    same = (segment_classes.view(-1, 1).cpu() == label_classes.view(1, -1).cpu()).numpy()
    cost = np.where(same, -iou, 1.0)  # another class's label: worse than any label of the segment's class
    rows, cols = linear_sum_assignment(cost)
    for r, c in zip(rows, cols):
        if same[r, c]:
            match[r] = int(c)
    return match


def matched_instance_loss(marginals, label_classes, segment_map, segment_classes, ignore_value=255, eps=1e-8):
    """
    Cross-entropy of the CRF's marginals against the matched ground truth (WSPS §3.5).

    Args:
        see :func:`match_segments`.

    Returns:
        Tensor: scalar mean −log Q_i(match(g_i)) over the pixels of matched segments; ``marginals.sum() * 0``
        when there are none (so the graph stays connected).
    """
    match = match_segments(marginals, label_classes, segment_map, segment_classes, ignore_value)
    target = torch.full_like(segment_map, -1)
    valid = segment_map != ignore_value
    if match.numel():
        lookup = match.to(segment_map.device)
        target[valid] = lookup[segment_map[valid].clamp(0, match.numel() - 1)]
    keep = target >= 0
    if not keep.any():
        return marginals.sum() * 0
    log_q = torch.log(marginals.clamp_min(eps))  # (L, h, w)
    picked = log_q.gather(0, target.clamp_min(0).unsqueeze(0)).squeeze(0)
    return -picked[keep].mean()
