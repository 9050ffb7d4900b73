"""Quality of generated pseudo labels against ground truth, before any detector is trained on them.

Two views, both as streaming, mergeable, picklable accumulators whose results are **fractions in [0, 1]** (not
percent; multiply by 100 to compare with the papers' tables):

- :class:`PseudoInstanceQualityAccumulator`: per-instance mask IoU of (pseudo mask, GT mask) pairs of the *same*
  annotation (the pseudo-mask store keeps the annotation id, so no matching is involved), summarised as BoxCaseg
  (Wang et al., CVPR 2021, §4.1 "Evaluation metric", Tab. 1-5) does: mIoU* and IoU@50 / IoU@75.
- :class:`PseudoPixelQualityAccumulator`: semantic label maps with "ignore" pixels, in the spirit of WSPS (Li, Arnab &
  Torr, ECCV 2018, §3.1-3.2): approximate ground truth labels only a confident subset Ω' ⊂ Ω of the pixels ("high
  precision", Fig. 2) and marks Ω \\ Ω' as ignore. Precision measures how right the labelled pixels are, recall how much
  of the true foreground they cover, ``fraction_ignored`` the size of Ω \\ Ω'.
"""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from wsis.core.masks import to_bool_mask

__all__ = ["PseudoInstanceQualityAccumulator", "PseudoPixelQualityAccumulator", "masked_iou"]


def masked_iou(pseudo: np.ndarray, gt: np.ndarray, ignore: Optional[np.ndarray] = None) -> float:
    """IoU of two ``HxW`` bool masks over the pixels outside ``ignore`` (``HxW`` bool, True = excluded).

    ``|P ∩ G \\ I| / |(P ∪ G) \\ I|``; two masks that are both empty there agree perfectly and get IoU **1.0**
    (an empty GT with a non-empty pseudo mask gets 0.0).
    """
    if pseudo.shape != gt.shape or (ignore is not None and ignore.shape != gt.shape):
        shapes = [pseudo.shape, gt.shape] + ([ignore.shape] if ignore is not None else [])
        raise ValueError(f"Pseudo mask, GT mask (and ignore region) must have one shape, got {shapes}")
    keep = ~ignore if ignore is not None else np.ones(gt.shape, dtype=bool)
    inter = np.count_nonzero(pseudo & gt & keep)
    union = np.count_nonzero((pseudo | gt) & keep)
    return 1.0 if union == 0 else inter / union


class PseudoInstanceQualityAccumulator:
    """Per-instance pseudo-mask IoU; one :meth:`add` per (pseudo mask, GT mask) pair.

    Results (:meth:`summarize`, fractions):

    - ``mean_iou``: mean IoU over instances;
    - ``class_mean_iou``: mean over classes of the per-class mean IoU. This *is* BoxCaseg's mIoU* ("calculates IoUs of
      every instance prediction, per-class mean IoU and averages all the per-class mean IoUs"), as a fraction;
    - ``iou@<t>``: fraction of instances with IoU >= t (BoxCaseg's IoU@50 / IoU@75; the paper says "larger than",
      which differs only for an IoU of exactly t);
    - ``num_instances`` (entering the means), ``num_invalid``, ``num_empty_gt`` (GT mask empty outside the ignore
      region).

    Invalid (dropped) pseudo masks, e.g. BoxCaseg's tight-box check, are counted in ``num_invalid`` and by default stay
    out of every mean; with ``invalid_as_zero=True`` they enter as IoU 0 (and in ``num_instances``).
    With no instance at all, the means are 0.0.

    Args:
        thresholds: IoU thresholds of the ``iou@<t>`` entries.
        invalid_as_zero: count invalid pseudo masks as IoU 0 instead of leaving them out.
    """

    def __init__(self, thresholds: Sequence[float] = (0.5, 0.75), invalid_as_zero: bool = False):
        self.thresholds = tuple(float(t) for t in thresholds)
        self.invalid_as_zero = invalid_as_zero
        self.reset()

    def reset(self) -> None:
        self._ious: List[float] = []
        self._cats: List[int] = []
        self.num_invalid = 0
        self.num_empty_gt = 0

    def add(
        self,
        pseudo_mask: Any,
        gt_mask: Any,
        category_id: int,
        ignore: Any = None,
        valid: bool = True,
    ) -> Optional[float]:
        """Add one instance and return its IoU (``None`` for an invalid mask that is left out).

        Args:
            pseudo_mask: ``HxW`` bool array or RLE; may be ``None`` when ``valid`` is False.
            gt_mask: ``HxW`` bool array, RLE or polygons (polygons take the size of ``pseudo_mask``).
            category_id: class of the instance (any int).
            ignore: optional ``HxW`` bool array / RLE of pixels excluded from this instance's IoU.
            valid: False when the pseudo mask was dropped.
        """
        category_id = int(category_id)
        if not valid:
            self.num_invalid += 1
            if not self.invalid_as_zero:
                return None
            self._ious.append(0.0)
            self._cats.append(category_id)
            return 0.0
        if pseudo_mask is None:
            raise ValueError("A valid pseudo instance needs a mask (pass valid=False for dropped ones)")
        pseudo = to_bool_mask(pseudo_mask)
        gt = to_bool_mask(gt_mask, *pseudo.shape) if isinstance(gt_mask, (list, tuple)) else to_bool_mask(gt_mask)
        ign = to_bool_mask(ignore) if ignore is not None else None
        iou = masked_iou(pseudo, gt, ign)
        if not np.any(gt if ign is None else gt & ~ign):
            self.num_empty_gt += 1
        self._ious.append(float(iou))
        self._cats.append(category_id)
        return float(iou)

    def merge(self, other: "PseudoInstanceQualityAccumulator") -> "PseudoInstanceQualityAccumulator":
        """Append ``other``'s instances (in place); returns ``self``."""
        if (other.thresholds, other.invalid_as_zero) != (self.thresholds, self.invalid_as_zero):
            raise ValueError("Cannot merge pseudo-quality accumulators with different settings")
        self._ious.extend(other._ious)
        self._cats.extend(other._cats)
        self.num_invalid += other.num_invalid
        self.num_empty_gt += other.num_empty_gt
        return self

    def per_class_iou(self) -> Dict[int, float]:
        """Mean IoU per category id, for categories with at least one counted instance."""
        ious, cats = np.asarray(self._ious, dtype=np.float64), np.asarray(self._cats, dtype=np.int64)
        return {int(c): float(ious[cats == c].mean()) for c in np.unique(cats)}

    def summarize(self) -> Dict[str, float]:
        ious = np.asarray(self._ious, dtype=np.float64)
        per_class = self.per_class_iou()
        res = {
            "mean_iou": float(ious.mean()) if ious.size else 0.0,
            "class_mean_iou": float(np.mean(list(per_class.values()))) if per_class else 0.0,
        }
        for t in self.thresholds:
            res[f"iou@{t:g}"] = float(np.mean(ious >= t)) if ious.size else 0.0
        res.update(num_instances=int(ious.size), num_invalid=self.num_invalid, num_empty_gt=self.num_empty_gt)
        return res


class PseudoPixelQualityAccumulator:
    """Pixel-level quality of semantic pseudo-label maps with ignore pixels.

    Label convention: ``HxW`` int maps with class ids ``0..K-1`` where ``background_id`` (default 0, VOC style) is the
    background class, and ``ignore_label`` (255) marks unlabelled pixels (in the pseudo map: Ω \\ Ω' of WSPS; in the GT:
    void, e.g. VOC object boundaries). Every statistic is computed over the pixels whose **GT** is not ignore, as in
    VOC's evaluation. With L = pseudo-labelled pixels (pseudo != ignore):

    - ``precision`` = |pseudo == GT on L| / |L| (all classes, background included);
    - ``recall`` = |pseudo == GT on GT-foreground| / |GT-foreground|, GT-foreground = GT != background_id (every
      evaluated pixel when ``background_id`` is None, e.g. Cityscapes, which has no background class); pixels the
      pseudo map leaves ignored count as missed;
    - ``fraction_ignored`` = |pseudo == ignore| / |evaluated pixels|;
    - ``iou-<name>`` per class and ``miou``: Jaccard index of each class restricted to L (confusion matrix over L),
      averaged over classes with a non-empty union.

    Undefined ratios (no labelled pixel, no GT foreground) are reported as 0.0; ``num_pixels``, ``num_labelled`` and
    ``num_gt_foreground`` say when that happens. All values are fractions in [0, 1].
    """

    def __init__(
        self,
        num_classes: int,
        ignore_label: int = 255,
        background_id: Optional[int] = 0,
        class_names: Optional[Sequence[str]] = None,
    ):
        if background_id is not None and not 0 <= background_id < num_classes:
            raise ValueError(f"background_id {background_id} outside 0..{num_classes - 1}")
        if 0 <= ignore_label < num_classes:
            raise ValueError(f"ignore_label {ignore_label} collides with a class id (num_classes={num_classes})")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"Got {len(class_names)} class names for {num_classes} classes")
        self.num_classes = int(num_classes)
        self.ignore_label = int(ignore_label)
        self.background_id = background_id
        self.class_names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
        self.reset()

    def reset(self) -> None:
        k = self.num_classes
        self.confusion = np.zeros((k, k), dtype=np.int64)  # [gt, pseudo] over labelled, evaluated pixels
        self.ignored_per_gt_class = np.zeros(k, dtype=np.int64)  # pseudo-ignored pixels by their GT class

    def add(self, pseudo_labels: np.ndarray, gt_labels: np.ndarray) -> None:
        """Add one image: ``pseudo_labels`` and ``gt_labels`` are ``HxW`` int maps (see the class docstring)."""
        pseudo, gt = np.asarray(pseudo_labels), np.asarray(gt_labels)
        if pseudo.shape != gt.shape:
            raise ValueError(f"Pseudo and GT label maps must have one shape, got {pseudo.shape} and {gt.shape}")
        for name, m in (("pseudo", pseudo), ("GT", gt)):
            bad = (m != self.ignore_label) & ((m < 0) | (m >= self.num_classes))
            if bad.any():
                raise ValueError(f"{name} labels {np.unique(m[bad]).tolist()} are neither in 0..{self.num_classes - 1} "
                                 f"nor ignore_label {self.ignore_label}")
        evaluated = gt != self.ignore_label
        labelled = evaluated & (pseudo != self.ignore_label)
        k = self.num_classes
        idx = gt[labelled].astype(np.int64) * k + pseudo[labelled].astype(np.int64)
        self.confusion += np.bincount(idx, minlength=k * k).reshape(k, k)
        unlabelled_gt = gt[evaluated & ~labelled].astype(np.int64)
        self.ignored_per_gt_class += np.bincount(unlabelled_gt, minlength=k)

    def merge(self, other: "PseudoPixelQualityAccumulator") -> "PseudoPixelQualityAccumulator":
        """Add ``other``'s counts (in place); returns ``self``."""
        if (other.num_classes, other.ignore_label, other.background_id) != (
            self.num_classes, self.ignore_label, self.background_id
        ):
            raise ValueError("Cannot merge pixel-quality accumulators with different settings")
        self.confusion += other.confusion
        self.ignored_per_gt_class += other.ignored_per_gt_class
        return self

    def summarize(self) -> Dict[str, float]:
        conf = self.confusion
        correct = np.diag(conf)
        gt_total = conf.sum(axis=1) + self.ignored_per_gt_class  # evaluated pixels per GT class
        fg = np.ones(self.num_classes, dtype=bool)
        if self.background_id is not None:
            fg[self.background_id] = False
        num_pixels, num_labelled, num_fg = int(gt_total.sum()), int(conf.sum()), int(gt_total[fg].sum())
        union = conf.sum(axis=0) + conf.sum(axis=1) - correct
        iou = np.divide(correct, union, out=np.zeros(self.num_classes), where=union > 0)
        res = {
            "precision": correct.sum() / num_labelled if num_labelled else 0.0,
            "recall": correct[fg].sum() / num_fg if num_fg else 0.0,
            "fraction_ignored": self.ignored_per_gt_class.sum() / num_pixels if num_pixels else 0.0,
            "miou": float(iou[union > 0].mean()) if (union > 0).any() else 0.0,
        }
        res = {k: float(v) for k, v in res.items()}
        for c in np.flatnonzero(union > 0):
            res[f"iou-{self.class_names[c]}"] = float(iou[c])
        res.update(num_pixels=num_pixels, num_labelled=num_labelled, num_gt_foreground=num_fg)
        return res
