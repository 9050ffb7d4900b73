"""
Salient-object maps from BoxCaseg's fused salient head (§3.3, Eq. 3), pure numpy/cv2: the whole-image input, the
map stored per image and its quality against true masks.

Geometry: the network learns the salient head on whole salient images resized to ``SALIENT_RESIZE`` square, then
randomly cropped (:func:`wsis.methods.boxcaseg.crops.salient_sample`). At inference the whole image is resized to
that square the same way (:func:`saliency_input`), its (s, s) fused probability is resized back to the image's
(H, W) bilinearly and stored as uint8 round(255·p) (:func:`saliency_map`): the format DSRG's background rule reads
(:func:`wsis.methods.dsrg.seeds.read_saliency`: 255 = salient, background seeds where map / 255 < 0.06, §3.1).
"""
import os

import cv2
import numpy as np

from wsis.core.semantic import IGNORE_LABEL
from wsis.data.semantic_labels import semantic_ground_truth

from .crops import proxy_crop, resize_to_box

__all__ = ["saliency_input", "saliency_map", "SaliencyQuality", "saliency_quality"]


def saliency_input(image, size=320):
    """
    The network's input for a whole image: the image resized to size×size (bilinear ``cv2.resize``, as
    :func:`~wsis.methods.boxcaseg.crops.salient_sample` resizes salient training images; it is
    :func:`~wsis.methods.boxcaseg.crops.proxy_crop` of the image's full box).

    Args:
        image (ndarray): (H, W, 3). size (int): ``WSIS.BOXCASEG.SALIENT_RESIZE``.

    Returns:
        ndarray: (size, size, 3) of the image's dtype.
    """
    h, w = np.shape(image)[:2]
    return proxy_crop(image, (0, 0, w, h), size)[0]


def saliency_map(prob, height, width):
    """
    The stored saliency map of one image: the (s, s) probability of its :func:`saliency_input` resized to the
    image bilinearly (:func:`~wsis.methods.boxcaseg.crops.resize_to_box` of the full box), clipped to [0, 1] and
    rounded to uint8 (``np.rint(255·p)``, halves to even).

    Args:
        prob (ndarray): (s, s) float probability, finite. height, width (int): the image's size.

    Returns:
        ndarray[uint8]: (height, width), 255 = salient.
    """
    prob = np.asarray(prob)
    if prob.ndim != 2 or not np.issubdtype(prob.dtype, np.floating) or not np.all(np.isfinite(prob)):
        raise ValueError(f"prob must be a finite (s, s) float map, got {prob.shape} {prob.dtype}")
    _, full = resize_to_box(prob, (0, 0, width, height), (height, width))
    return np.rint(np.clip(full, 0.0, 1.0) * 255.0).astype(np.uint8)


class SaliencyQuality:
    """
    Saliency maps against binary true maps (e.g. the union of an image's object masks), on the pixels not ignored
    (COCO's crowd regions). With s = map / 255 in [0, 1] and g in {0, 1}:

    - ``mae``: mean over images of the mean |s − g| (the saliency benchmarks' MAE);
    - ``precision``, ``recall``, ``f_measure``: of s ≥ ``threshold`` against g, pixels pooled over all images,
      F_β = (1 + β²)·P·R / (β²·P + R) with β² = ``beta2`` (0.3, the saliency benchmarks' weight on precision);
    - ``mean_iou``: mean over images of IoU(s ≥ ``threshold``, g), 1 for an image where both are empty;
    - ``bg_seed_precision``, ``bg_seed_recall``: DSRG's background rule s < ``seed_threshold`` (§3.1, 0.06): the
      fraction of those pixels that are true background, and the fraction of the true background they cover.
    """

    def __init__(self, threshold=0.5, seed_threshold=0.06, beta2=0.3):
        self.threshold, self.seed_threshold, self.beta2 = float(threshold), float(seed_threshold), float(beta2)
        self.counts = dict.fromkeys(("tp", "fp", "fn", "seed", "seed_bg", "bg"), 0)
        self.mae, self.iou = [], []

    def add(self, saliency, gt, ignore=None):
        """
        Args:
            saliency (ndarray[uint8]): (H, W) map, 255 = salient.
            gt (ndarray[bool]): (H, W) true salient pixels. ignore (ndarray[bool] or None): (H, W) pixels left out.
        """
        saliency, gt = np.asarray(saliency), np.asarray(gt, dtype=bool)
        if saliency.dtype != np.uint8 or saliency.shape != gt.shape or saliency.ndim != 2:
            raise ValueError(f"saliency must be an (H, W) uint8 map of the true map's shape {gt.shape}, got "
                             f"{saliency.shape} {saliency.dtype}")
        keep = np.ones(gt.shape, dtype=bool) if ignore is None else ~np.asarray(ignore, dtype=bool)
        s = saliency[keep].astype(np.float32) / 255.0  # as wsis.methods.dsrg.seeds.read_saliency reads it
        g = gt[keep]
        if not s.size:
            return
        pred, seed = s >= self.threshold, s < self.seed_threshold
        tp = int(np.count_nonzero(pred & g))
        c = self.counts
        c["tp"] += tp
        c["fp"] += int(np.count_nonzero(pred)) - tp
        c["fn"] += int(np.count_nonzero(g)) - tp
        c["seed"] += int(np.count_nonzero(seed))
        c["seed_bg"] += int(np.count_nonzero(seed & ~g))
        c["bg"] += int(np.count_nonzero(~g))
        union = int(np.count_nonzero(pred | g))
        self.iou.append(tp / union if union else 1.0)
        self.mae.append(float(np.abs(s - g).mean()))

    def summarize(self):
        """The figures above (``mae`` and ``mean_iou`` None before any image), the settings and ``num_scored``."""
        c = self.counts
        precision = c["tp"] / max(c["tp"] + c["fp"], 1)
        recall = c["tp"] / max(c["tp"] + c["fn"], 1)
        denominator = self.beta2 * precision + recall
        f = (1 + self.beta2) * precision * recall / denominator if denominator > 0 else 0.0
        return {"mae": float(np.mean(self.mae)) if self.mae else None, "precision": precision,
                "recall": recall, "f_measure": f, "mean_iou": float(np.mean(self.iou)) if self.iou else None,
                "bg_seed_precision": c["seed_bg"] / max(c["seed"], 1), "bg_seed_recall": c["seed_bg"] / max(c["bg"], 1),
                "threshold": self.threshold, "seed_threshold": self.seed_threshold, "beta2": self.beta2,
                "num_scored": len(self.mae)}


def saliency_quality(folder, gt_dicts, **kwargs):
    """
    :class:`SaliencyQuality` (``kwargs``) of the maps ``<folder>/<image_id>.png`` against the union of each dict's
    non-crowd instance masks (crowd regions ignored; :func:`wsis.data.semantic_labels.semantic_ground_truth`).
    Images without a map are left out and counted (``num_missing``).
    """
    acc = SaliencyQuality(**kwargs)
    n = 0
    for d in gt_dicts:
        sal = cv2.imread(os.path.join(folder, f"{d['image_id']}.png"), cv2.IMREAD_UNCHANGED)
        if sal is None:
            continue
        label = semantic_ground_truth(d)
        acc.add(sal, (label > 0) & (label != IGNORE_LABEL), label == IGNORE_LABEL)
        n += 1
    return dict(acc.summarize(), num_missing=len(gt_dicts) - n)
