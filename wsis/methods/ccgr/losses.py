"""The MIL branch's loss over peak bags (CCGR paper, "Multiple instance learning branch"; WSDDN, Bilen & Vedaldi
2016): each proposal's class softmax times its detection softmax over the proposals of its bag, summed over the bag,
clamped, and a binary cross-entropy per class against the bag's label; the bags' losses are summed."""
import torch

__all__ = ["wsddn_contributions", "wsddn_bag_scores", "wsddn_bag_loss"]


def wsddn_contributions(cls_logits, det_logits, bag_index, num_bags):
    """
    Each proposal's part of its bag's score: softmax_c(x^cls) ⊙ softmax_{r ∈ B}(x^det), (N, C) (arguments as
    :func:`wsddn_bag_scores`; the detection softmax runs over the proposals of each bag, per class).
    """
    if cls_logits.shape != det_logits.shape or cls_logits.dim() != 2 or len(bag_index) != len(cls_logits):
        raise ValueError(f"cls {tuple(cls_logits.shape)}, det {tuple(det_logits.shape)} and {len(bag_index)} bag "
                         "indices do not agree")
    c = cls_logits.shape[1]
    index = bag_index.view(-1, 1).expand(-1, c)
    peak = det_logits.new_full((num_bags, c), float("-inf")).scatter_reduce(0, index, det_logits, "amax")
    e = torch.exp(det_logits - peak.detach()[bag_index])
    det = e / det_logits.new_zeros((num_bags, c)).index_add(0, bag_index, e)[bag_index]
    return cls_logits.softmax(1) * det


def wsddn_bag_scores(cls_logits, det_logits, bag_index, num_bags, eps=1e-10):
    """
    Args:
        cls_logits, det_logits (Tensor): (N, C) the two streams' scores of the N proposals of all bags.
        bag_index (Tensor): (N,) long bag of each proposal, in 0..num_bags − 1.

    Returns:
        Tensor: (num_bags, C) φ_B = Σ_{r ∈ B} softmax_c(x^cls)_r ⊙ softmax_{r ∈ B}(x^det)_r, clamped to
        [e, 1 − e] with e = max(eps, the dtype's machine epsilon): WSDDN's 1e-10, which float32 cannot hold below 1.
    """
    share = wsddn_contributions(cls_logits, det_logits, bag_index, num_bags)
    scores = share.new_zeros((num_bags, share.shape[1])).index_add(0, bag_index, share)
    e = max(eps, torch.finfo(scores.dtype).eps)
    return scores.clamp(e, 1 - e)


def wsddn_bag_loss(cls_logits, det_logits, bag_index, bag_labels):
    """
    Args:
        cls_logits, det_logits, bag_index: see :func:`wsddn_bag_scores`. bag_labels (Tensor): (B,) long class of
            each bag (its peak's).

    Returns:
        Tensor: Σ_B −Σ_c [L_B(c) log φ_B(c) + (1 − L_B(c)) log(1 − φ_B(c))]; ``cls_logits.sum() * 0`` without bags.
    """
    if len(bag_labels) == 0 or len(cls_logits) == 0:
        return cls_logits.sum() * 0 + det_logits.sum() * 0
    if (torch.bincount(bag_index, minlength=len(bag_labels)) == 0).any():
        raise ValueError("a bag has no proposal; leave out bags without proposals")
    phi = wsddn_bag_scores(cls_logits, det_logits, bag_index, len(bag_labels))
    target = torch.zeros_like(phi, dtype=torch.bool).scatter_(1, bag_labels.view(-1, 1), True)
    return -torch.where(target, phi.log(), (1 - phi).log()).sum()
