"""
DSRG's losses (§3.2, Eq. 1-2), as pure functions of tensors.

- Balanced seeding loss (Eq. 1): −mean log H over the foreground seeds plus −mean log H over the background seeds,
  each normalised by its own count. As the official layer, the counts are per image and the two terms are
  averaged over the batch; an image without foreground (or background) seeds adds 0 to that term.
- Boundary / constrain loss (SEC, Kolesnikov & Lampert 2016): (1/n) Σ_u Σ_c Q_{u,c} log(Q_{u,c} / H_{u,c}),
  the KL divergence from the network's softmax H to its CRF Q (no gradient through Q). As the official layer,
  the ratio Q/H is clipped to [0.05, 20] (so a pixel far from its CRF pulls no harder than that).
"""
import torch

__all__ = ["balanced_seed_loss", "constrain_loss", "MIN_PROB"]

#: The official softmax layer adds this to every probability (then renormalises), so log H stays finite.
MIN_PROB = 1e-4


def balanced_seed_loss(log_probs, labels, ignore=-1):
    """
    Args:
        log_probs (Tensor): (B, C, h, w) log-softmax of the segmentation logits (channel 0 background).
        labels (Tensor): (B, h, w) long: seed (or grown) class per pixel, ``ignore`` where unlabelled.

    Returns:
        tuple[Tensor, Tensor]: scalar (background term, foreground term); their sum is ℓ_seed. Both are 0 (not
        NaN) when a batch has no seed of that kind.
    """
    if labels.shape != (log_probs.shape[0],) + tuple(log_probs.shape[2:]):
        raise ValueError(f"labels {tuple(labels.shape)} do not fit log_probs {tuple(log_probs.shape)}")
    seeded = labels != ignore
    picked = log_probs.gather(1, torch.where(seeded, labels, torch.zeros_like(labels)).unsqueeze(1)).squeeze(1)
    picked = torch.where(seeded, picked, torch.zeros_like(picked))
    bg, fg = seeded & (labels == 0), seeded & (labels > 0)

    def term(mask):
        count = mask.flatten(1).sum(1).to(picked.dtype)
        total = (picked * mask).flatten(1).sum(1)
        return -(total / count.clamp_min(1.0)).mean()

    return term(bg), term(fg)


def constrain_loss(probs, crf_probs, ratio_clip=(0.05, 20.0)):
    """
    Args:
        probs (Tensor): (B, C, h, w) the network's softmax H (gradient flows here).
        crf_probs (Tensor): (B, C, h, w) its CRF marginals Q (detached here).
        ratio_clip (tuple): bounds of Q / H.

    Returns:
        Tensor: scalar mean over pixels of Σ_c Q log(Q / H); 0 when Q = H.
    """
    if probs.shape != crf_probs.shape:
        raise ValueError(f"probs {tuple(probs.shape)} and crf_probs {tuple(crf_probs.shape)} differ")
    if probs.numel() == 0:
        return probs.sum() * 0.0
    q = crf_probs.detach()
    ratio = (q / probs.clamp_min(1e-12)).clamp(*ratio_clip)
    return (q * torch.log(ratio)).sum(1).mean()
