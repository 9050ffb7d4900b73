"""
One DSRG training step on a batch of segmentation logits, detectron2-free (Fig. 2): softmax → (CRF) → region
growing from the seeds → balanced seeding loss on the grown labels (Eq. 1) + constrain loss against the CRF (Eq. 2).
``DSRGHead`` calls :func:`dsrg_step`; so can any other segmentation network.
"""
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from wsis.core.meanfield import LocalCRFParams, local_crf

from .growing import VARIANTS, region_growing
from .losses import MIN_PROB, balanced_seed_loss, constrain_loss

__all__ = ["DSRGSettings", "dsrg_step", "seeds_at", "tags_from_seeds", "TARGETS"]
TARGETS = ("seeds", "labels")


@dataclass(frozen=True)
class DSRGSettings:
    """``MODEL.DSRG`` (see :func:`wsis.methods.dsrg.config.add_dsrg_config`)."""

    targets: str = "seeds"
    growing: str = "official"
    fg_threshold: float = 0.85
    bg_threshold: float = 0.99
    grow_on_crf: bool = True
    constrain_weight: float = 1.0
    ratio_clip: tuple = (0.05, 20.0)
    crf: LocalCRFParams = field(default_factory=LocalCRFParams)
    crf_unary: str = "prob"

    def __post_init__(self):
        if self.targets not in TARGETS:
            raise ValueError(f"MODEL.DSRG.TARGETS must be one of {TARGETS}, got {self.targets!r}")
        if self.growing not in VARIANTS + ("none",):
            raise ValueError(f"MODEL.DSRG.GROWING must be one of {VARIANTS + ('none',)}, got {self.growing!r}")

    @property
    def needs_crf(self):
        return self.targets == "seeds" and (self.constrain_weight > 0 or (self.grow_on_crf and self.growing != "none"))

    @classmethod
    def from_config(cls, cfg):
        c, r = cfg.MODEL.DSRG, cfg.MODEL.DSRG.CRF
        crf = LocalCRFParams(int(r.ITERATIONS), float(r.GAUSSIAN_WEIGHT), float(r.GAUSSIAN_XY_STD),
                             float(r.BILATERAL_WEIGHT), float(r.BILATERAL_XY_STD), float(r.BILATERAL_RGB_STD),
                             int(r.WINDOW), r.NORMALIZATION)
        return cls(c.TARGETS, c.GROWING, float(c.FG_THRESHOLD), float(c.BG_THRESHOLD), bool(c.GROW_ON_CRF),
                   float(c.CONSTRAIN_WEIGHT), tuple(float(v) for v in c.RATIO_CLIP), crf, r.UNARY)


def seeds_at(targets, size, ignore_value=255):
    """
    Full-resolution label maps (B, H, W) (``ignore_value`` = unlabelled) sampled at the centres of a (h, w) grid
    (nearest), as (B, h, w) long with −1 where unlabelled.
    """
    small = F.interpolate(targets[:, None].float(), size=size, mode="nearest")[:, 0].long()
    return torch.where(small == ignore_value, torch.full_like(small, -1), small)


def tags_from_seeds(seeds, num_classes):
    """(B, C) bool: the classes that have a seed (background always), for callers without image tags."""
    b = seeds.shape[0]
    tags = torch.zeros(b, num_classes, dtype=torch.bool, device=seeds.device)
    flat = seeds.reshape(b, -1)
    for i in range(b):
        present = flat[i][flat[i] >= 0].unique()
        tags[i, present[present < num_classes]] = True
    tags[:, 0] = True
    return tags


def dsrg_step(logits, seeds, tags, settings=DSRGSettings(), images=None, stride=8.0):
    """
    Args:
        logits (Tensor): (B, C, h, w) segmentation scores (channel 0 background).
        seeds (Tensor): (B, h, w) long seed classes, −1 unlabelled (:func:`seeds_at`); with ``targets="labels"``
            the dense labels of the retraining stage.
        tags (Tensor): (B, C) bool classes of each image (background set here).
        images (Tensor or None): (B, 3, H, W) colours 0-255, needed when ``settings.needs_crf``.
        stride (float): image pixels per logit.

    Returns:
        tuple[dict, Tensor]: losses (``loss_seed_bg``, ``loss_seed_fg``, ``loss_constrain``; or ``loss_sem_seg``
        for ``targets="labels"``) and the (B, h, w) labels the seeding loss used (grown seeds), −1 unlabelled.
    """
    if settings.targets == "labels":
        if not (seeds >= 0).any():
            return {"loss_sem_seg": logits.float().sum() * 0.0}, seeds
        return {"loss_sem_seg": F.cross_entropy(logits.float(), seeds, ignore_index=-1)}, seeds
    tags = tags.clone()
    tags[:, 0] = True
    probs = torch.softmax(logits.float(), 1) + MIN_PROB
    probs = probs / probs.sum(1, keepdim=True)
    crf_q = None
    if settings.needs_crf:
        if images is None:
            raise ValueError("the DSRG step's CRF needs the images (set MODEL.DSRG.CONSTRAIN_WEIGHT 0.0 and "
                             "MODEL.DSRG.GROW_ON_CRF False to train without them)")
        crf_q = local_crf(probs.detach(), images.float(), stride, settings.crf, settings.crf_unary, label_mask=tags)
    labels = seeds
    if settings.growing != "none":
        source = crf_q if (settings.grow_on_crf and crf_q is not None) else probs.detach()
        labels = region_growing(source, seeds, tags, settings.fg_threshold, settings.bg_threshold, settings.growing)
    bg, fg = balanced_seed_loss(torch.log(probs), labels)
    losses = {"loss_seed_bg": bg, "loss_seed_fg": fg}
    if settings.constrain_weight > 0:
        losses["loss_constrain"] = settings.constrain_weight * constrain_loss(probs, crf_q, settings.ratio_clip)
    return losses, labels
