"""
How well localisation cues (CAMs, Grad-CAMs, a centre prior) locate the objects of an image, against semantic GT
label maps (0 background, class c → c + 1, 255 void/ignore; the labels of :mod:`wsis.methods.cam.labels`):

- "CAM mIoU" (IRNet Table 2 "CAM", the official ``step/eval_cam.py``): each pixel takes the argmax over
  [a background channel = t, the cues of the image's classes] (:func:`cam_label_map`), and the mIoU of those maps is
  reported at the best single threshold t over a sweep (:class:`CAMThresholdSweep`);
- the quality of IRNet's confident areas (§4.2: fg above 0.30, bg below 0.05, ignore between), as foreground /
  background precision and recall and the fraction left ignored (:class:`ConfidentAreaAccumulator`).

Both count pixels with :class:`~wsis.evaluation.pseudo_quality.PseudoPixelQualityAccumulator`'s confusion matrix
(GT-ignore pixels are never counted). Results are plain floats in [0, 1]; an empty input gives zeros, never NaN.
"""
from typing import Dict, Iterable, Optional, Sequence

import numpy as np

from .pseudo_quality import PseudoPixelQualityAccumulator

__all__ = ["cam_label_map", "CAMThresholdSweep", "ConfidentAreaAccumulator", "confident_area_scores"]

DEFAULT_THRESHOLDS = tuple(np.round(np.arange(0.05, 1.0, 0.05), 6))


def _numpy(x):
    if hasattr(x, "detach"):  # a torch tensor, on any device
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_cues(cams, classes, shape=None):
    cams = _numpy(cams).astype(np.float32, copy=False)
    classes = _numpy(classes).astype(np.int64).reshape(-1)
    if cams.ndim != 3 or cams.shape[0] != classes.size:
        raise ValueError(f"cams must be (M, H, W) with M = {classes.size} classes, got shape {cams.shape}")
    if shape is not None and cams.shape[1:] != tuple(shape):
        raise ValueError(f"cams of size {cams.shape[1:]} for a GT map of size {tuple(shape)}")
    return cams, classes


def cam_label_map(cams, classes, bg_threshold) -> np.ndarray:
    """
    argmax over [a background channel filled with ``bg_threshold``, cams], mapped to 0 / class + 1 (IRNet's
    ``eval_cam.py``): a pixel is background unless some class's cue is strictly above the threshold (ties go to
    background, the first channel), and otherwise takes the class of the highest cue (ties: the first class).

    Args:
        cams: (M, H, W) cues in [0, 1]. classes: (M,) contiguous class of each. bg_threshold (float).

    Returns:
        ndarray[int64]: (H, W); all 0 when M = 0.
    """
    cams, classes = _check_cues(cams, classes)
    keys = np.concatenate([[0], classes + 1])
    bg = np.full((1,) + cams.shape[1:], bg_threshold, dtype=np.float32)
    return keys[np.argmax(np.concatenate([bg, cams]), axis=0)]


class CAMThresholdSweep:
    """
    The CAM mIoU at every background threshold of a sweep, one
    :class:`~wsis.evaluation.pseudo_quality.PseudoPixelQualityAccumulator` per threshold.

    Args:
        num_classes: label ids 0..num_classes-1, **background (0) included** (K + 1 for K object classes).
        thresholds: the background thresholds t (default 0.05, 0.10, ..., 0.95).
        ignore_label: GT void (255).
    """

    def __init__(self, num_classes: int, thresholds: Sequence[float] = DEFAULT_THRESHOLDS, ignore_label: int = 255,
                 class_names: Optional[Sequence[str]] = None):
        self.thresholds = tuple(round(float(t), 6) for t in thresholds)
        if not self.thresholds:
            raise ValueError("CAMThresholdSweep needs at least one threshold")
        self.accumulators = [PseudoPixelQualityAccumulator(num_classes, ignore_label, 0, class_names)
                             for _ in self.thresholds]
        self.num_images = 0

    def add(self, cams, classes, gt) -> None:
        """One image: ``cams`` (M, H, W) of its ``classes`` (M,) and its (H, W) GT label map."""
        gt = _numpy(gt)
        cams, classes = _check_cues(cams, classes, gt.shape)
        keys = classes + 1
        if cams.shape[0]:
            peak, best = cams.max(axis=0), keys[np.argmax(cams, axis=0)]  # = cam_label_map for every threshold
        else:
            peak, best = np.full(gt.shape, -np.inf, dtype=np.float32), np.zeros(gt.shape, dtype=np.int64)
        for t, acc in zip(self.thresholds, self.accumulators):
            acc.add(np.where(peak > np.float32(t), best, 0), gt)
        self.num_images += 1

    def merge(self, other: "CAMThresholdSweep") -> "CAMThresholdSweep":
        """Add ``other``'s counts (in place); returns ``self``."""
        if other.thresholds != self.thresholds:
            raise ValueError("Cannot merge CAM threshold sweeps over different thresholds")
        for mine, theirs in zip(self.accumulators, other.accumulators):
            mine.merge(theirs)
        self.num_images += other.num_images
        return self

    def accumulator(self, threshold: float) -> PseudoPixelQualityAccumulator:
        """The accumulator of one threshold of the sweep (its per-class IoUs, precision, ...)."""
        return self.accumulators[self.thresholds.index(round(float(threshold), 6))]

    def summarize(self) -> Dict[str, object]:
        """
        Returns:
            dict: ``best_threshold`` (the lowest threshold reaching ``best_miou``), ``best_miou``,
            ``miou_per_threshold`` ({t: mIoU}), ``num_images``. With no image: best_threshold and best_miou 0.0.
        """
        mious = {t: float(acc.summarize()["miou"]) for t, acc in zip(self.thresholds, self.accumulators)}
        if not self.num_images:
            return {"best_threshold": 0.0, "best_miou": 0.0, "miou_per_threshold": mious, "num_images": 0}
        best = max(self.thresholds, key=lambda t: (mious[t], -t))
        return {"best_threshold": float(best), "best_miou": mious[best], "miou_per_threshold": mious,
                "num_images": self.num_images}


class ConfidentAreaAccumulator(PseudoPixelQualityAccumulator):
    """
    The quality of confident-area label maps (IRNet §4.2; :func:`wsis.methods.cam.labels.irnet_confident_labels`),
    counted over the pixels whose GT is not void. :meth:`summarize` adds, to the pixel-quality entries:

    - ``fg_precision``: of the pixels labelled an object class, the fraction whose GT is that class;
    - ``fg_recall``: of the GT-foreground pixels, the fraction labelled with their own class (ignored ones missed);
    - ``bg_precision``: of the pixels labelled background, the fraction that are GT background;
    - ``bg_recall``: of the GT-background pixels, the fraction labelled background;
    - ``fraction_ignored``: the fraction of pixels labelled ignore (255).

    Args:
        num_classes: label ids, background (0) included.
    """

    def __init__(self, num_classes: int, ignore_label: int = 255, class_names: Optional[Sequence[str]] = None):
        super().__init__(num_classes, ignore_label=ignore_label, background_id=0, class_names=class_names)

    def summarize(self) -> Dict[str, float]:
        res = super().summarize()
        conf, ignored = self.confusion, self.ignored_per_gt_class  # conf: [gt, pseudo] over labelled pixels
        diag = np.diag(conf)

        def ratio(a, b):
            return float(a / b) if b else 0.0

        res.update(
            fg_precision=ratio(diag[1:].sum(), conf[:, 1:].sum()),
            fg_recall=ratio(diag[1:].sum(), conf[1:].sum() + ignored[1:].sum()),
            bg_precision=ratio(conf[0, 0], conf[:, 0].sum()),
            bg_recall=ratio(conf[0, 0], conf[0].sum() + ignored[0]),
        )
        return res


def confident_area_scores(label_maps: Iterable, gt_maps: Iterable, num_classes: int,
                          ignore_label: int = 255) -> Dict[str, float]:
    """:class:`ConfidentAreaAccumulator` over pairs of (H, W) label and GT maps; its :meth:`summarize`."""
    label_maps, gt_maps = list(label_maps), list(gt_maps)
    if len(label_maps) != len(gt_maps):
        raise ValueError(f"got {len(label_maps)} label maps for {len(gt_maps)} GT maps")
    acc = ConfidentAreaAccumulator(num_classes, ignore_label=ignore_label)
    for labels, gt in zip(label_maps, gt_maps):
        acc.add(_numpy(labels), _numpy(gt))
    return acc.summarize()
