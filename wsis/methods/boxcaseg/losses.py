"""
BoxCaseg's training losses (Wang et al., CVPR 2021, §3.3) as pure functions of tensors (detectron2-free).

- :func:`boxcaseg_mil_loss`: Eq. 1 with the smoothness term of Eq. 2, on the weak head of every sample; it is the
  BBTP loss of :mod:`.box_supervised` (one implementation) applied to the whole crop instead of an ROI grid.
- :func:`mixed_pixel_loss`: Eq. 3, BCE of the α-mixture of the salient and transferred heads, on salient samples:
  of their probabilities (``mix="prob"``, the paper's Eq. 3) or of their logits (``mix="logit"``, the official code).
- :func:`boxcaseg_losses`: Eq. 4 for a mixed batch (λ = 1 on salient samples, 0 on box samples).

Logits are (N, H, W): one map per sample, already upsampled to the crop size (take channel 0 of the heads' output).
"""
import math

import torch
import torch.nn.functional as F

from wsis.methods.bbtp.losses import mil_bag_loss, mil_pairwise_loss

OUTPUT_KEYS = ("weak", "salient", "transferred")
MIXES = ("prob", "logit")


def _check_alpha(alpha):
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    return float(alpha)


def boxcaseg_mil_loss(weak_logits, box_mask, pairwise_weight=0.05):
    """
    Eq. 1 (+ 0.05 × Eq. 2): MIL over the rows and columns of the crop (a bag is positive iff it crosses the box) plus
    the 8-neighbour smoothness term, i.e. ``mil_bag_loss(weak_logits, box_mask) + pairwise_weight *
    mil_pairwise_loss(weak_logits)``. As there, both terms are means (over the N·(H + W) bags and over the neighbour
    pairs) rather than Eq. 1's sums.

    Args:
        weak_logits (Tensor): (N, H, W) weak-head logits of N crops.
        box_mask (Tensor[bool]): (N, H, W) the box inside each crop: the jittered label rectangle of a box sample,
            the tight box of the mask of a salient sample.
        pairwise_weight (float): weight of φ (0.05 in Eq. 1).

    Returns:
        Tensor: scalar (``weak_logits.sum() * 0`` for N = 0).
    """
    return mil_bag_loss(weak_logits, box_mask) + pairwise_weight * mil_pairwise_loss(weak_logits)


def mix_logits(salient_logits, transferred_logits, alpha):
    """The official code's fused logit α·S_a + (1 − α)·S_t."""
    return alpha * salient_logits + (1.0 - alpha) * transferred_logits


def _mixture_log_probs(salient_logits, transferred_logits, alpha):
    """log p and log(1 − p) of p = α·σ(s) + (1 − α)·σ(t), by logsumexp; α ∈ {0, 1} gives a −inf term whose softmax
    weight is exactly 0, so values and gradients stay finite and both inputs stay in the graph."""
    log_a = math.log(alpha) if alpha > 0 else float("-inf")
    log_b = math.log1p(-alpha) if alpha < 1 else float("-inf")
    log_p = torch.logaddexp(log_a + F.logsigmoid(salient_logits), log_b + F.logsigmoid(transferred_logits))
    log_q = torch.logaddexp(log_a + F.logsigmoid(-salient_logits), log_b + F.logsigmoid(-transferred_logits))
    return log_p, log_q


def mixed_pixel_loss(salient_logits, transferred_logits, masks, alpha=0.7, mix="prob"):
    """
    Eq. 3: −M·log p − (1 − M)·log(1 − p), averaged over all N·H·W pixels, with

    - ``mix="prob"`` (the paper): p = α·σ(S_a) + (1 − α)·σ(S_t), computed in log space (log p = logsumexp(log α +
      log σ(s), log(1 − α) + log σ(t)); log(1 − p) likewise with σ(−s), σ(−t)), so saturated logits give finite
      values. α = 1 is plain BCE on the salient head (the transferred logits get a zero gradient); α = 0 is plain
      BCE on the transferred head;
    - ``mix="logit"`` (the official code): p = σ(α·S_a + (1 − α)·S_t), BCE-with-logits of the fused logit.

    Args:
        salient_logits, transferred_logits (Tensor): (N, H, W) logits of the salient and transferred heads.
        masks (Tensor): (N, H, W) ground-truth salient masks M, bool or {0, 1} float.
        alpha (float): α ∈ [0, 1] (0.7; 0.6 on COCO).
        mix (str): "prob" or "logit".

    Returns:
        Tensor: scalar (``(salient_logits.sum() + transferred_logits.sum()) * 0`` for N = 0, a zero with graph).
    """
    alpha = _check_alpha(alpha)
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {MIXES}, got {mix!r}")
    if salient_logits.dim() != 3:
        raise ValueError(f"salient_logits must be (N, H, W), got shape {tuple(salient_logits.shape)}")
    for name, t in (("transferred_logits", transferred_logits), ("masks", masks)):
        if tuple(t.shape) != tuple(salient_logits.shape):
            raise ValueError(f"{name} shape {tuple(t.shape)} does not match salient_logits "
                             f"{tuple(salient_logits.shape)}")
    if salient_logits.numel() == 0:
        return (salient_logits.sum() + transferred_logits.sum()) * 0
    if mix == "logit":
        fused = mix_logits(salient_logits, transferred_logits, alpha)
        return F.binary_cross_entropy_with_logits(fused, masks.to(fused.dtype))
    log_p, log_q = _mixture_log_probs(salient_logits, transferred_logits, alpha)
    m = masks.to(log_p.dtype)
    return -(m * log_p + (1 - m) * log_q).mean()


def _per_sample(logits, name, n=None):
    """Accept (N, H, W) or the heads' (N, 1, H, W)."""
    if logits.dim() == 4 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if logits.dim() != 3 or (n is not None and logits.shape[0] != n):
        raise ValueError(f"outputs[{name!r}] must be (N, H, W) or (N, 1, H, W) logits with N = {n}, "
                         f"got shape {tuple(logits.shape)}")
    return logits


def boxcaseg_losses(outputs, box_masks, salient_masks, is_salient, alpha=0.7, pairwise_weight=0.05, mix="prob"):
    """
    Eq. 4 for a batch of N crops mixing box and salient samples: L = L_mil (every sample's weak head) + λ·L_pix
    (λ = 1 on salient samples only).

    Args:
        outputs (dict[str, Tensor]): ``{"weak", "salient", "transferred"}`` logits, each (N, H, W) or (N, 1, H, W)
            at the crop size.
        box_masks (Tensor[bool]): (N, H, W) box of each crop (label rectangle / tight box of the salient mask).
        salient_masks (Tensor): (N, H, W) salient masks; rows of box samples are ignored (fill them with anything).
        is_salient (Tensor[bool]): (N,) which samples are salient images.
        alpha (float): α of Eq. 3. pairwise_weight (float): weight of φ in Eq. 1. mix (str): "prob" or "logit"
            (:func:`mixed_pixel_loss`).

    Returns:
        dict[str, Tensor]: ``{"loss_mil", "loss_pixel"}`` scalars; ``loss_pixel`` is a zero that keeps the graph when
        the batch has no salient sample. The MIL mean runs over all samples' bags, the pixel mean over the salient
        samples' pixels.
    """
    missing = [k for k in OUTPUT_KEYS if k not in outputs]
    if missing:
        raise KeyError(f"outputs lacks {missing}; expected keys {OUTPUT_KEYS}")
    weak = _per_sample(outputs["weak"], "weak")
    n = weak.shape[0]
    salient = _per_sample(outputs["salient"], "salient", n)
    transferred = _per_sample(outputs["transferred"], "transferred", n)
    is_salient = torch.as_tensor(is_salient, device=weak.device).bool()
    if tuple(is_salient.shape) != (n,):
        raise ValueError(f"is_salient must be ({n},), got shape {tuple(is_salient.shape)}")
    if tuple(salient_masks.shape) != tuple(salient.shape):
        raise ValueError(f"salient_masks shape {tuple(salient_masks.shape)} does not match logits "
                         f"{tuple(salient.shape)}")
    return {
        "loss_mil": boxcaseg_mil_loss(weak, box_masks, pairwise_weight),
        "loss_pixel": mixed_pixel_loss(salient[is_salient], transferred[is_salient], salient_masks[is_salient], alpha,
                                       mix),
    }
