"""Panoptic quality PQ = SQ x RQ (Kirillov et al., "Panoptic Segmentation", CVPR 2019, Eq. 1-2), computed exactly as
the official COCO ``panopticapi`` (``pq_compute``) does, without its files and processes:

- a predicted and a ground-truth segment of the same category match when IoU > 0.5 (the match is then unique);
  the prediction's pixels that are void in the ground truth (id 0) are removed from the union:
  ``union = |p| + |g| - |p ∩ g| - |p ∩ void|``;
- crowd ground-truth segments (``iscrowd=1``) never match and are never false negatives;
- an unmatched prediction is a false positive unless more than half of it lies on void pixels plus crowd regions of its
  own category;
- per category: PQ = sum IoU(TP) / (TP + FP/2 + FN/2), SQ = sum IoU(TP) / TP (0 without TP), RQ = TP / (TP + FP/2 +
  FN/2); the All / Things / Stuff numbers average over the categories of the group with TP + FP + FN > 0.

Like panopticapi, id 0 is void in both maps; a non-zero id missing from ``segments_info`` is an error, and so is a
predicted segment listed in ``segments_info`` but absent from its map. Two deliberate details: crowd overlap in the
false-positive test sums every crowd segment of the category (panopticapi keeps only the last one listed, the same on
COCO, which has at most one crowd segment per category per image), and crowd regions are *not* removed from the
matching union (the paper and panopticapi only remove void there).
"""
import logging
from typing import Any, Dict, Mapping, Sequence, Union

import numpy as np

__all__ = ["PQAccumulator", "panoptic_rgb_to_id", "panoptic_id_to_rgb", "VOID_ID"]

from wsis.core.panoptic import _OFFSET, VOID_ID, panoptic_id_to_rgb, panoptic_rgb_to_id  # noqa: F401  (re-exported)

logger = logging.getLogger(__name__)


class PQAccumulator:
    """Streaming, mergeable, picklable PQ accumulator (one :meth:`add` per image).

    Args:
        categories: list of dicts ``{"id": int, "isthing": 0/1, "name": str (optional)}``, or a dict ``id -> isthing``.
            Category ids are those of ``segments_info`` (COCO ids, need not be contiguous).
    """

    def __init__(self, categories: Union[Sequence[Mapping[str, Any]], Mapping[int, Any]]):
        if isinstance(categories, Mapping):
            categories = [{"id": k, "isthing": v} for k, v in categories.items()]
        self.category_ids = [int(c["id"]) for c in categories]
        if len(set(self.category_ids)) != len(self.category_ids):
            raise ValueError(f"Duplicate category ids in {self.category_ids}")
        self.isthing = np.array([bool(c["isthing"]) for c in categories], dtype=bool)
        self.names = [str(c.get("name", c["id"])) for c in categories]
        self._index = {cid: i for i, cid in enumerate(self.category_ids)}
        self.reset()

    def reset(self) -> None:
        n = len(self.category_ids)
        self.num_images = 0
        self.tp = np.zeros(n, dtype=np.int64)
        self.fp = np.zeros(n, dtype=np.int64)
        self.fn = np.zeros(n, dtype=np.int64)
        self.iou = np.zeros(n, dtype=np.float64)

    def add(
        self,
        pred_ids: np.ndarray,
        pred_segments_info: Sequence[Mapping[str, Any]],
        gt_ids: np.ndarray,
        gt_segments_info: Sequence[Mapping[str, Any]],
    ) -> None:
        """Add one image.

        Args:
            pred_ids: ``HxW`` int segment ids, 0 = void.
            pred_segments_info: ``[{"id", "category_id"}]`` for every non-zero id of ``pred_ids``.
            gt_ids: ``HxW`` int segment ids, 0 = void / unlabelled.
            gt_segments_info: ``[{"id", "category_id", "iscrowd" (default 0)}]``.
        """
        pred_ids, gt_ids = np.asarray(pred_ids), np.asarray(gt_ids)
        if pred_ids.shape != gt_ids.shape or pred_ids.ndim != 2:
            raise ValueError(f"Prediction and ground truth must be HxW maps of one shape, got {pred_ids.shape} and "
                             f"{gt_ids.shape}")
        pred_cat = self._segments(pred_segments_info, "prediction")
        gt_cat = self._segments(gt_segments_info, "ground truth")
        gt_crowd = {int(s["id"]): bool(s.get("iscrowd", 0)) for s in gt_segments_info}
        pred_area = self._areas(pred_ids, pred_cat, "prediction")
        gt_area = self._areas(gt_ids, gt_cat, "ground truth")
        missing = sorted(set(pred_cat) - set(pred_area))
        if missing:
            raise ValueError(f"Predicted segments {missing} are listed in segments_info but absent from the map")

        joint = gt_ids.astype(np.int64) * _OFFSET + pred_ids.astype(np.int64)
        labels, counts = np.unique(joint, return_counts=True)
        overlap = {(int(l // _OFFSET), int(l % _OFFSET)): int(n) for l, n in zip(labels, counts)}

        gt_matched, pred_matched = set(), set()
        for (g, p), inter in overlap.items():
            if g == VOID_ID or p == VOID_ID or gt_crowd[g] or gt_cat[g] != pred_cat[p]:
                continue
            union = pred_area[p] + gt_area[g] - inter - overlap.get((VOID_ID, p), 0)
            iou = inter / union
            if iou > 0.5:
                k = self._index[gt_cat[g]]
                self.tp[k] += 1
                self.iou[k] += iou
                gt_matched.add(g)
                pred_matched.add(p)

        crowd_by_cat: Dict[int, list] = {}
        for g, cat in gt_cat.items():
            if gt_crowd[g]:
                crowd_by_cat.setdefault(cat, []).append(g)
            elif g not in gt_matched:
                self.fn[self._index[cat]] += 1
        for p, cat in pred_cat.items():
            if p in pred_matched:
                continue
            ignored = overlap.get((VOID_ID, p), 0) + sum(overlap.get((g, p), 0) for g in crowd_by_cat.get(cat, ()))
            if ignored / pred_area[p] > 0.5:
                continue
            self.fp[self._index[cat]] += 1
        self.num_images += 1

    def merge(self, other: "PQAccumulator") -> "PQAccumulator":
        """Add ``other``'s counts (in place); returns ``self``."""
        if other.category_ids != self.category_ids:
            raise ValueError("Cannot merge PQ accumulators over different categories")
        self.num_images += other.num_images
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.iou += other.iou
        return self

    def compute(self) -> Dict[str, Any]:
        """panopticapi-shaped results as fractions: ``{"All"|"Things"|"Stuff": {"pq","sq","rq","n"},
        "per_class": {category_id: {"pq","sq","rq"}}}`` (per_class only for categories with TP + FP + FN > 0;
        a group without such categories reports 0.0 with n = 0)."""
        denom = self.tp + 0.5 * self.fp + 0.5 * self.fn
        seen = denom > 0
        pq = np.divide(self.iou, denom, out=np.zeros_like(self.iou), where=seen)
        sq = np.divide(self.iou, self.tp, out=np.zeros_like(self.iou), where=self.tp > 0)
        rq = np.divide(self.tp.astype(np.float64), denom, out=np.zeros_like(self.iou), where=seen)
        results: Dict[str, Any] = {}
        for group, member in (("All", np.ones_like(seen)), ("Things", self.isthing), ("Stuff", ~self.isthing)):
            sel = seen & member
            n = int(sel.sum())
            results[group] = {
                "pq": float(pq[sel].mean()) if n else 0.0,
                "sq": float(sq[sel].mean()) if n else 0.0,
                "rq": float(rq[sel].mean()) if n else 0.0,
                "n": n,
            }
        results["per_class"] = {
            self.category_ids[k]: {"pq": float(pq[k]), "sq": float(sq[k]), "rq": float(rq[k])}
            for k in np.flatnonzero(seen)
        }
        return results

    def summarize(self) -> Dict[str, float]:
        """Flat dict in percent (0-100): ``PQ, SQ, RQ`` (All), ``PQ_th, SQ_th, RQ_th``, ``PQ_st, SQ_st, RQ_st`` and
        ``PQ-<name>, SQ-<name>, RQ-<name>`` for each category that appears (name = category id when not given)."""
        res = self.compute()
        if res["All"]["n"] == 0:
            logger.warning("PQ: no segment in %d images; reporting 0.0", self.num_images)
        out = {}
        for group, suffix in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
            for key in ("pq", "sq", "rq"):
                out[key.upper() + suffix] = 100.0 * res[group][key]
        for cid, vals in res["per_class"].items():
            name = self.names[self._index[cid]]
            for key in ("pq", "sq", "rq"):
                out[f"{key.upper()}-{name}"] = 100.0 * vals[key]
        return out

    # ------------------------------------------------------------------ helpers
    def _segments(self, segments_info: Sequence[Mapping[str, Any]], kind: str) -> Dict[int, int]:
        cats: Dict[int, int] = {}
        for s in segments_info:
            sid, cat = int(s["id"]), int(s["category_id"])
            if sid == VOID_ID or not 0 < sid < _OFFSET:
                raise ValueError(f"{kind} segment id {sid} must lie in [1, {_OFFSET}) (0 is void)")
            if sid in cats:
                raise ValueError(f"Duplicate {kind} segment id {sid} in segments_info")
            if cat not in self._index:
                raise ValueError(f"{kind} segment {sid} has unknown category_id {cat}")
            cats[sid] = cat
        return cats

    @staticmethod
    def _areas(ids: np.ndarray, cats: Dict[int, int], kind: str) -> Dict[int, int]:
        labels, counts = np.unique(ids, return_counts=True)
        if labels.size and (labels[0] < 0 or labels[-1] >= _OFFSET):
            raise ValueError(f"{kind} ids must lie in [0, {_OFFSET}), got range [{labels[0]}, {labels[-1]}]")
        unknown = [int(l) for l in labels if l != VOID_ID and int(l) not in cats]
        if unknown:
            raise ValueError(f"{kind} map has segment ids {unknown} that are not in segments_info")
        return {int(l): int(n) for l, n in zip(labels, counts) if l != VOID_ID}
