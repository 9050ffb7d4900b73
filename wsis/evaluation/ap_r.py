"""VOC/SDS-style instance-mask average precision, AP^r (Hariharan et al., "Simultaneous Detection and Segmentation",
ECCV 2014), as reported by BBTP, BoxCaseg, WSPS, IRNet and CCGR.

AP^r at IoU threshold t, for one class:

1. rank all predictions of the class (over all images) by score, highest first;
2. in each image, walk the predictions in that order and match each to the *unmatched* non-crowd ground-truth
   instance of the same class with the highest mask IoU ``>= t`` (ties go to the later ground truth, as in
   pycocotools). A matched prediction is a true positive; a prediction left without a match is a false positive, so a
   duplicate of an already matched instance is a false positive;
3. a prediction that matches no instance but whose overlap with a crowd region (``iscrowd=1``) of its class is
   ``>= t`` is ignored (neither TP nor FP). As in pycocotools, the overlap with a crowd region is
   |pred ∩ crowd| / |pred|. Crowd regions never count as ground truth;
4. precision/recall over the ranked list; AP is the area under the precision/recall curve (see ``interpolation``).

AP^r is the mean of the per-class APs over classes with at least one non-crowd ground-truth instance; classes without
ground truth are excluded from the mean (their predictions can only be false positives, and AP is undefined there).
AP^r_vol is the mean of AP^r over IoU thresholds 0.1, 0.2, ..., 0.9 (SDS §5).

Matching note: the VOC devkit matches a prediction to the ground truth of highest IoU whether or not it is already
taken (a taken one makes it a FP); this module matches among the still-unmatched instances (COCO style), so that
``interpolation="coco101"`` reproduces ``pycocotools.cocoeval.COCOeval`` exactly. The two differ only when a prediction
has IoU >= t with two same-class instances, which for non-overlapping instances is impossible at t > 0.5 (at t = 0.5
only for a prediction that is exactly the union of two equal-sized instances).
"""
import logging
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pycocotools.mask as mask_util

from wsis.core.masks import segmentation_shape, to_rle

__all__ = [
    "InstanceAPAccumulator",
    "average_precision",
    "match_predictions",
    "VOL_IOU_THRESHOLDS",
    "REPORT_IOU_THRESHOLDS",
]

logger = logging.getLogger(__name__)

#: Thresholds averaged into AP^r_vol (SDS).
VOL_IOU_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: Thresholds reported individually by the weakly-supervised papers.
REPORT_IOU_THRESHOLDS = (0.25, 0.5, 0.7, 0.75)
#: pycocotools' 101 recall thresholds (computed exactly as COCOeval.Params does).
_COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)

TP, FP, IGNORED = 1, 0, -1


def average_precision(is_tp: np.ndarray, num_gt: int, interpolation: str = "voc") -> float:
    """Average precision of one ranked list of predictions.

    Args:
        is_tp: ``(N,)`` bool, predictions sorted by decreasing score (ignored predictions already removed).
        num_gt: number of (non-crowd) ground-truth instances, ``> 0``.
        interpolation:
            ``"voc"``: VOC2010+ / SDS ``VOCap``: area under the monotonically non-increasing envelope of the precision,
            integrated over every recall value reached;
            ``"voc07"``: VOC2007 11-point: mean over r in {0, 0.1, ..., 1} of max precision at recall >= r
            (compared with a 1e-12 tolerance, so that a recall of exactly 0.3 reaches r = 0.3);
            ``"coco101"``: pycocotools: mean over 101 recall thresholds of the envelope precision at the first recall
            ``>=`` the threshold (0 beyond the last recall reached).

    Returns:
        AP as a fraction in [0, 1]; 0 for an empty list.
    """
    if num_gt <= 0:
        raise ValueError(f"average_precision needs num_gt > 0, got {num_gt}")
    is_tp = np.asarray(is_tp, dtype=bool).ravel()
    tp = np.cumsum(is_tp).astype(np.float64)
    fp = np.cumsum(~is_tp).astype(np.float64)
    recall = tp / num_gt
    if interpolation == "voc":
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.concatenate([[0.0], precision, [0.0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        steps = np.flatnonzero(mrec[1:] != mrec[:-1])
        return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))
    if interpolation == "voc07":
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        ap = 0.0
        for r in np.arange(0.0, 1.1, 0.1):
            reached = recall >= r - 1e-12
            ap += (precision[reached].max() if reached.any() else 0.0) / 11.0
        return float(ap)
    if interpolation == "coco101":
        precision = tp / (tp + fp + np.spacing(1))
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        inds = np.searchsorted(recall, _COCO_RECALL_THRESHOLDS, side="left")
        q = np.zeros(len(_COCO_RECALL_THRESHOLDS))
        valid = inds < len(precision)
        q[valid] = precision[inds[valid]]
        return float(q.mean())
    raise ValueError(f"Unknown interpolation {interpolation!r}; expected 'voc', 'voc07' or 'coco101'")


def match_predictions(
    ious: np.ndarray, crowd_ious: np.ndarray, iou_thresholds: Sequence[float]
) -> np.ndarray:
    """Greedy matching of one image's predictions of one class.

    Args:
        ious: ``(D, G)`` mask IoU between the D predictions (sorted by decreasing score) and the G non-crowd GT.
        crowd_ious: ``(D, C)`` |pred ∩ crowd| / |pred| against the C crowd regions of the class.
        iou_thresholds: ``T`` thresholds.

    Returns:
        ``(D, T)`` int8 flags: 1 = TP, 0 = FP, -1 = ignored (best match is a crowd region).
    """
    num_dets = ious.shape[0]
    flags = np.zeros((num_dets, len(iou_thresholds)), dtype=np.int8)
    for ti, thresh in enumerate(iou_thresholds):
        thresh = min(thresh, 1 - 1e-10)  # pycocotools: IoU 1.0 still matches at threshold 1.0
        taken = np.zeros(ious.shape[1], dtype=bool)
        for d in range(num_dets):
            cand = np.flatnonzero(~taken & (ious[d] >= thresh))
            if cand.size:
                vals = ious[d, cand]
                best = cand[np.flatnonzero(vals == vals.max())[-1]]
                taken[best] = True
                flags[d, ti] = TP
            elif crowd_ious.shape[1] and (crowd_ious[d] >= thresh).any():
                flags[d, ti] = IGNORED
    return flags


class InstanceAPAccumulator:
    """Streaming, mergeable AP^r accumulator (one ``add`` per image; ``merge`` across workers; picklable).

    Only ``(score, TP/FP/ignored flag per threshold)`` per prediction and the ground-truth counts are kept, never masks.

    Args:
        num_classes: K; category ids are contiguous ``0..K-1``.
        class_names: optional K names; enables the per-class ``"AP^r@<t>-<name>"`` entries of :meth:`summarize`.
        iou_thresholds: thresholds reported individually. The AP^r_vol thresholds are added when ``compute_vol``.
        interpolation: ``"voc"`` (default, SDS/VOC2010+), ``"voc07"`` or ``"coco101"``; see :func:`average_precision`.
        compute_vol: also compute AP^r_vol.
        per_class_threshold: IoU threshold of the per-class entries (0.5).
    """

    def __init__(
        self,
        num_classes: int,
        class_names: Optional[Sequence[str]] = None,
        iou_thresholds: Sequence[float] = REPORT_IOU_THRESHOLDS,
        interpolation: str = "voc",
        compute_vol: bool = True,
        per_class_threshold: float = 0.5,
    ):
        if num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"Got {len(class_names)} class names for {num_classes} classes")
        if interpolation not in ("voc", "voc07", "coco101"):
            raise ValueError(f"Unknown interpolation {interpolation!r}; expected 'voc', 'voc07' or 'coco101'")
        self.num_classes = int(num_classes)
        self.class_names = list(class_names) if class_names is not None else None
        self.interpolation = interpolation
        self.report_thresholds = tuple(float(t) for t in iou_thresholds)
        self.compute_vol = compute_vol
        self.per_class_threshold = float(per_class_threshold)
        wanted = set(self.report_thresholds) | {self.per_class_threshold}
        if compute_vol:
            wanted |= set(VOL_IOU_THRESHOLDS)
        if any(not 0.0 < t <= 1.0 for t in wanted):
            raise ValueError(f"IoU thresholds must be in (0, 1], got {sorted(wanted)}")
        self.iou_thresholds = tuple(sorted(wanted))
        self.reset()

    def reset(self) -> None:
        self.num_images = 0
        self._gt_counts = np.zeros(self.num_classes, dtype=np.int64)
        self._scores: List[List[np.ndarray]] = [[] for _ in range(self.num_classes)]  # per class: (D_i,) float64
        self._flags: List[List[np.ndarray]] = [[] for _ in range(self.num_classes)]  # per class: (D_i, T) int8

    # ------------------------------------------------------------------ accumulation
    def add(self, preds: Sequence[Dict[str, Any]], gts: Sequence[Dict[str, Any]], image_size=None) -> None:
        """Add one image.

        Args:
            preds: dicts ``{"category_id": int in 0..K-1, "score": float, "segmentation": HxW bool array | RLE}``.
            gts: dicts ``{"category_id", "segmentation": array | RLE | polygons, "iscrowd": 0/1 (default 0)}``.
            image_size: ``(H, W)``; only needed when every segmentation is a polygon list.

        Raises:
            ValueError: masks of different shapes in one image, category ids out of range (nothing is added then).
            KeyError: a dict lacks ``category_id``, ``score`` or ``segmentation``.
        """
        height, width = self._image_size(preds, gts, image_size)
        pred_cls = np.array([self._category(p) for p in preds], dtype=np.int64)
        pred_scores = np.array([float(p["score"]) for p in preds], dtype=np.float64)
        gt_cls = np.array([self._category(g) for g in gts], dtype=np.int64)
        gt_crowd = np.array([bool(g.get("iscrowd", 0)) for g in gts], dtype=bool)
        per_class = []  # computed first, committed at the end: a bad image leaves the state untouched
        for c in np.unique(pred_cls):
            d_idx = np.flatnonzero(pred_cls == c)
            d_idx = d_idx[np.argsort(-pred_scores[d_idx], kind="mergesort")]
            g_idx = np.flatnonzero((gt_cls == c) & ~gt_crowd)
            c_idx = np.flatnonzero((gt_cls == c) & gt_crowd)
            dt = [to_rle(preds[i]["segmentation"], height, width) for i in d_idx]
            ious = self._iou(dt, [to_rle(gts[i]["segmentation"], height, width) for i in g_idx], crowd=False)
            crowd = self._iou(dt, [to_rle(gts[i]["segmentation"], height, width) for i in c_idx], crowd=True)
            per_class.append((c, pred_scores[d_idx], match_predictions(ious, crowd, self.iou_thresholds)))
        for c, scores, flags in per_class:
            self._scores[c].append(scores)
            self._flags[c].append(flags)
        np.add.at(self._gt_counts, gt_cls[~gt_crowd], 1)
        self.num_images += 1

    def merge(self, other: "InstanceAPAccumulator") -> "InstanceAPAccumulator":
        """Add ``other``'s images to this accumulator (in place); returns ``self``.

        Equal scores are ranked in the order images were added, ``self``'s before ``other``'s.
        """
        if (other.num_classes, other.iou_thresholds) != (self.num_classes, self.iou_thresholds):
            raise ValueError(
                f"Cannot merge accumulators with different classes/thresholds: "
                f"{self.num_classes}/{self.iou_thresholds} vs {other.num_classes}/{other.iou_thresholds}"
            )
        self.num_images += other.num_images
        self._gt_counts = self._gt_counts + other._gt_counts
        for c in range(self.num_classes):
            self._scores[c].extend(other._scores[c])
            self._flags[c].extend(other._flags[c])
        return self

    # ------------------------------------------------------------------ results
    def ap_per_class(self) -> np.ndarray:
        """``(K, T)`` AP as fractions for every class and ``self.iou_thresholds``; NaN rows for classes without GT."""
        aps = np.full((self.num_classes, len(self.iou_thresholds)), np.nan)
        for c in range(self.num_classes):
            if self._gt_counts[c] == 0:
                continue
            if self._scores[c]:
                scores = np.concatenate(self._scores[c])
                flags = np.concatenate(self._flags[c])[np.argsort(-scores, kind="mergesort")]
            else:
                flags = np.zeros((0, len(self.iou_thresholds)), dtype=np.int8)
            for ti in range(len(self.iou_thresholds)):
                kept = flags[:, ti][flags[:, ti] != IGNORED]
                aps[c, ti] = average_precision(kept == TP, int(self._gt_counts[c]), self.interpolation)
        return aps

    @property
    def num_evaluated_classes(self) -> int:
        """Classes with at least one non-crowd GT instance, i.e. those averaged into AP^r."""
        return int(np.count_nonzero(self._gt_counts))

    def summarize(self) -> Dict[str, float]:
        """Flat dict of percentages (0-100), Detectron2-style.

        Keys: ``"AP^r@<t>"`` for every reported threshold (``"AP^r@0.5"``), ``"AP^r_vol"`` when computed,
        ``"AP^r@<t>-<name>"`` per class with GT at ``per_class_threshold`` when class names are given, and
        ``"num_classes_evaluated"``. With no ground truth at all, every AP is 0.0 (never NaN, so the dict stays
        JSON-friendly) and ``num_classes_evaluated`` is 0.
        """
        aps = self.ap_per_class()
        has_gt = self._gt_counts > 0
        if not has_gt.any():
            logger.warning("AP^r: no ground-truth instance in %d images; reporting 0.0", self.num_images)
        mean = aps[has_gt].mean(axis=0) * 100.0 if has_gt.any() else np.zeros(len(self.iou_thresholds))
        col = {t: i for i, t in enumerate(self.iou_thresholds)}
        results = {f"AP^r@{t:g}": float(mean[col[t]]) for t in self.report_thresholds}
        if self.compute_vol:
            results["AP^r_vol"] = float(np.mean([mean[col[t]] for t in VOL_IOU_THRESHOLDS]))
        if self.class_names is not None:
            t = self.per_class_threshold
            for c in np.flatnonzero(has_gt):
                results[f"AP^r@{t:g}-{self.class_names[c]}"] = float(aps[c, col[t]] * 100.0)
        results["num_classes_evaluated"] = self.num_evaluated_classes
        return results

    # ------------------------------------------------------------------ helpers
    def _category(self, ann: Dict[str, Any]) -> int:
        c = int(ann["category_id"])
        if not 0 <= c < self.num_classes:
            raise ValueError(f"category_id {c} outside the contiguous range 0..{self.num_classes - 1}")
        return c

    @staticmethod
    def _image_size(preds, gts, image_size):
        shapes = {}
        for kind, anns in (("prediction", preds), ("ground truth", gts)):
            for i, ann in enumerate(anns):
                shape = segmentation_shape(ann["segmentation"])
                if shape is not None:
                    shapes.setdefault(shape, f"{kind} {i}")
        if image_size is not None:
            shapes.setdefault((int(image_size[0]), int(image_size[1])), "image_size")
        if len(shapes) > 1:
            desc = ", ".join(f"{s} ({who})" for s, who in shapes.items())
            raise ValueError(f"Masks of one image have different shapes: {desc}")
        if not shapes:  # no masks, or polygons only (to_rle asks for the size if it is ever needed)
            return None, None
        return next(iter(shapes))

    @staticmethod
    def _iou(dt: List[dict], gt: List[dict], crowd: bool) -> np.ndarray:
        if not dt or not gt:
            return np.zeros((len(dt), len(gt)))
        return np.asarray(mask_util.iou(dt, gt, [int(crowd)] * len(gt)), dtype=np.float64).reshape(len(dt), len(gt))
