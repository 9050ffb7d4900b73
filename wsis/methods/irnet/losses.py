"""
IRNet's training signal: inter-pixel relations mined from confident CAM labels (§4.2, Eqs. 2–4) and the losses of its
two branches (§4.3, Eqs. 5–6; §4.4, Eq. 8; §4.5, Eq. 9). Losses are pure functions.

Shapes: N images, K pair directions (:class:`wsis.methods.irnet.paths.PairIndex`), (H, W) the label grid (1/4 of
the image, as IRNet). Labels: 0 background, c + 1 a class, ``ignore`` (255) the band between the confident areas.
"""
from typing import Dict, NamedTuple

import torch

from .paths import PairIndex

__all__ = ["PairLabels", "labels_on_grid", "pair_labels", "affinity_loss", "displacement_loss", "irnet_losses"]

EPS = 1e-5  # the official log / division guard


class PairLabels(NamedTuple):
    """Boolean (N, K, H, W) masks of P⁺_fg, P⁺_bg and P⁻ (Eqs. 3–4): pairs with both ends labelled and in bounds."""
    fg_pos: torch.Tensor
    bg_pos: torch.Tensor
    neg: torch.Tensor


def labels_on_grid(labels, stride: int, size, ignore_value: int = 255):
    """
    Label maps at image resolution → the (h, w) output grid of a stride-``stride`` network: the label at the
    centre pixel of each cell (stride // 2 + stride · i), ``ignore_value`` where a cell's centre is outside the map
    (the official loader rescales its label PNGs by 1/4 with nearest-neighbour sampling).

    Args:
        labels (Tensor): (N, H, W) integer. size ((int, int)): the grid (h, w).
    Returns:
        Tensor: (N, h, w) int64.
    """
    h, w = size
    grid = labels[:, stride // 2::stride, stride // 2::stride][:, :h, :w].long()
    out = grid.new_full((labels.shape[0], h, w), ignore_value)
    out[:, :grid.shape[1], :grid.shape[2]] = grid
    return out


def pair_labels(labels, index: PairIndex, ignore_value: int = 255) -> PairLabels:
    """
    Class equivalence of every pair within the radius (Eqs. 2–4).

    Args:
        labels (Tensor): (N, H, W) integer label maps. index (PairIndex): the radius (IRNet trains with 10).
    Returns:
        PairLabels: a pair is positive when both ends have the same label (foreground when that label is > 0),
        negative when they differ; pairs touching ``ignore_value`` or leaving the grid are in none of the three.
    """
    if labels.dim() != 3:
        raise ValueError(f"labels must be (N, H, W), got {tuple(labels.shape)}")
    labels = labels.long()
    l_i, l_j = labels.unsqueeze(1), index.shifted(labels, ignore_value)
    valid = (l_i != ignore_value) & (l_j != ignore_value)
    same = l_i == l_j
    pos = same & valid
    return PairLabels(pos & (l_i > 0), pos & (l_i == 0), valid & ~same)


def _masked_mean(values, mask):
    """Σ values·mask / (Σ mask + ε): the official normalisation (0 with a graph when no pair is in ``mask``)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / (mask.sum() + EPS)


def affinity_loss(affinities, pairs: PairLabels) -> Dict[str, torch.Tensor]:
    """
    The class-boundary loss of Eq. 8, from affinities a_ij = 1 − max B on the path (Eq. 7).

    Args:
        affinities (Tensor): (N, K, H, W) in [0, 1]. pairs (PairLabels).
    Returns:
        dict: ``fg_pos`` = mean −log a over P⁺_fg, ``bg_pos`` over P⁺_bg, ``neg`` = mean −log(1 − a) over P⁻;
        Eq. 8 is fg_pos / 2 + bg_pos / 2 + neg.
    """
    pos = -torch.log(affinities + EPS)
    return {"fg_pos": _masked_mean(pos, pairs.fg_pos), "bg_pos": _masked_mean(pos, pairs.bg_pos),
            "neg": _masked_mean(-torch.log(1.0 + EPS - affinities), pairs.neg)}


def displacement_loss(displacement, pairs: PairLabels, index: PairIndex) -> Dict[str, torch.Tensor]:
    """
    The displacement losses of Eqs. 5 (foreground) and 6 (background), L1 averaged over the two components as the
    official code does (``/ (2 |P|)``).

    Args:
        displacement (Tensor): (N, 2, H, W) D in grid cells, (dy, dx). pairs (PairLabels). index (PairIndex).
    Returns:
        dict: ``fg`` = mean |δ(i, j) − δ̂(i, j)| over P⁺_fg with δ = D(x_i) − D(x_j), δ̂ = x_j − x_i;
        ``bg`` = mean |δ(i, j)| over P⁺_bg.
    """
    delta = index.displacement_differences(displacement)  # (N, 2, K, H, W)
    target = index.direction_tensor(displacement.device, displacement.dtype)
    fg = (delta - target).abs().sum(1) / 2
    bg = delta.abs().sum(1) / 2
    return {"fg": _masked_mean(fg, pairs.fg_pos), "bg": _masked_mean(bg, pairs.bg_pos)}


def irnet_losses(boundary_logits, displacement, labels, index: PairIndex, ignore_value=255,
                 boundary_weight=0.5, displacement_weight=0.5) -> Dict[str, torch.Tensor]:
    """
    Eq. 9 from a batch's outputs and IR labels: ``loss_irnet_boundary`` = boundary_weight × Eq. 8 and
    ``loss_irnet_displacement`` = displacement_weight × (Eq. 5 + Eq. 6). The official ``train_irn.py`` weighs
    both by 1/2 (``(pos + neg) / 2 + (dp_fg + dp_bg) / 2`` with pos = (fg + bg) / 2), the defaults here; the paper
    writes Eq. 9 with weights 1, a uniform scale of the learning rate.

    Args:
        boundary_logits (Tensor): (N, 1, H, W) the boundary branch before its sigmoid. displacement (Tensor):
            (N, 2, H, W). labels (Tensor): (N, H, W) IR labels on the same grid.
    """
    if boundary_logits.shape[-2:] != labels.shape[-2:] or displacement.shape[-2:] != labels.shape[-2:]:
        raise ValueError(f"outputs {tuple(boundary_logits.shape[-2:])} / {tuple(displacement.shape[-2:])} and "
                         f"labels {tuple(labels.shape[-2:])} must share one grid")
    pairs = pair_labels(labels, index, ignore_value)
    aff = index.affinities(torch.sigmoid(boundary_logits[:, 0]))
    a = affinity_loss(aff, pairs)
    d = displacement_loss(displacement, pairs, index)
    return {"loss_irnet_boundary": boundary_weight * (a["fg_pos"] / 2 + a["bg_pos"] / 2 + a["neg"]),
            "loss_irnet_displacement": displacement_weight * (d["fg"] + d["bg"])}
