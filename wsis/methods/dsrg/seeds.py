"""
DSRG's seed cues (§3.1) from localisation cues: foreground where a tagged class's CAM reaches a fraction of its
maximum, background from a saliency map (the paper) or from low CAM everywhere; a pixel claimed twice → unlabelled.

The paper keeps "the top 20 % of the largest value" of each heatmap, citing SEC and AE-PSL, who follow the CAM
paper (Zhou et al. 2016): the pixels above 20 % of the map's maximum. That is ``fg_threshold = 0.2`` here, on each
class's own maximum. Background: saliency below 0.06 of the normalised saliency map (the paper, which uses DRFI
maps), or every tagged class's CAM below ``bg_threshold`` of its maximum (for data without a saliency model). An
untagged image is all background. Seeds are written as the semantic pseudo-label PNGs of the CAM stage
(0 background, class + 1, 255 unlabelled) by ``tools/make_semantic_labels.py ... WSIS.CAM.LABELS dsrg``.
"""
import os
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch

from wsis.core.semantic import IGNORE_LABEL
from wsis.methods.cam.localization import upsample_cams

__all__ = ["BACKGROUND_RULES", "dsrg_seeds", "SeedSettings", "read_saliency"]
BACKGROUND_RULES = ("saliency", "low_cam")


def dsrg_seeds(cams, classes, fg_threshold=0.2, background="low_cam", bg_threshold=0.05, saliency=None,
               saliency_threshold=0.06):
    """
    Args:
        cams (ndarray): (M, H, W) cues of the image's M tagged classes (any scale; each is divided by its max).
        classes (ndarray): (M,) contiguous class ids.
        fg_threshold (float): a class's seeds are its pixels ≥ fg_threshold × its max.
        background (str): "saliency" (pixels with saliency < ``saliency_threshold``) or "low_cam" (every class
            < ``bg_threshold`` × its max).
        saliency (ndarray or None): (H, W) saliency in [0, 1] (needed by the saliency rule).

    Returns:
        ndarray[uint8]: (H, W): 0 background, class + 1, 255 unlabelled (no seed, or claimed by two).
    """
    if background not in BACKGROUND_RULES:
        raise ValueError(f"background must be one of {BACKGROUND_RULES}, got {background!r}")
    cams = np.asarray(cams, dtype=np.float32)
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    if cams.ndim != 3 or len(cams) != len(classes):
        raise ValueError(f"cams must be (M, H, W) with M = {len(classes)} classes, got {cams.shape}")
    if len(classes) and (classes.min() < 0 or classes.max() + 1 >= IGNORE_LABEL):
        raise ValueError(f"class ids must be in [0, {IGNORE_LABEL - 2}], got {classes.tolist()}")
    h, w = cams.shape[1:]
    peak = cams.reshape(len(cams), -1).max(1) if len(cams) else np.zeros(0, np.float32)
    norm = cams / np.maximum(peak, 1e-12)[:, None, None]
    fg = (norm >= fg_threshold) & (peak > 0)[:, None, None]
    if background == "saliency":
        if saliency is None or np.shape(saliency) != (h, w):
            raise ValueError(f"the saliency rule needs an (H, W) = {(h, w)} saliency map, got "
                             f"{None if saliency is None else np.shape(saliency)}")
        bg = np.asarray(saliency) < saliency_threshold
    else:
        bg = (norm < bg_threshold).all(0) if len(cams) else np.ones((h, w), bool)
    if not len(cams):  # an untagged image holds none of the classes: all background
        bg = np.ones((h, w), bool)
    claims = fg.sum(0) + bg
    out = np.full((h, w), IGNORE_LABEL, np.uint8)
    out[(claims == 1) & bg] = 0
    for k, c in enumerate(classes):
        out[(claims == 1) & fg[k]] = c + 1
    return out


def read_saliency(folder, image_id, height, width):
    """``<folder>/<image_id>.png`` (uint8 saliency, 255 = salient) as (H, W) float32 in [0, 1]."""
    path = os.path.join(folder, f"{image_id}.png")
    sal = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if sal is None:
        raise FileNotFoundError(f"{path}: no saliency map for image id {image_id}")
    if sal.shape != (height, width):
        raise ValueError(f"{path}: saliency map is {sal.shape[1]}x{sal.shape[0]}, image id {image_id} is "
                         f"{width}x{height}")
    return sal.astype(np.float32) / 255.0


@dataclass(frozen=True)
class SeedSettings:
    """DSRG seeds as a label rule of :func:`wsis.methods.cam.label_job.make_semantic_labels` (``WSIS.DSRG.SEEDS``)."""

    fg_threshold: float = 0.2
    background: str = "low_cam"
    bg_threshold: float = 0.05
    saliency_dir: str = ""
    saliency_threshold: float = 0.06
    method: str = "dsrg"

    def __post_init__(self):
        if self.background not in BACKGROUND_RULES:
            raise ValueError(f"WSIS.DSRG.SEEDS.BACKGROUND must be one of {BACKGROUND_RULES}, got {self.background!r}")
        if self.background == "saliency" and not self.saliency_dir:
            raise ValueError("WSIS.DSRG.SEEDS.BACKGROUND saliency needs WSIS.DSRG.SEEDS.SALIENCY_DIR")

    @classmethod
    def from_config(cls, cfg):
        s = cfg.WSIS.DSRG.SEEDS
        return cls(float(s.FG_THRESHOLD), s.BACKGROUND, float(s.BG_THRESHOLD), s.SALIENCY_DIR,
                   float(s.SALIENCY_THRESHOLD))

    def to_dict(self):
        return asdict(self)

    def label(self, image, classes, cams, stride, image_id):
        """The (H, W) seed map of one image (the interface of ``make_semantic_labels``)."""
        h, w = image.shape[:2]
        full = upsample_cams(torch.as_tensor(np.asarray(cams, dtype=np.float32)), h, w, stride).numpy()
        sal = read_saliency(self.saliency_dir, image_id, h, w) if self.background == "saliency" else None
        return dsrg_seeds(full, classes, self.fg_threshold, self.background, self.bg_threshold, sal,
                          self.saliency_threshold)
