"""BoxCaseg's proxy-mask quality (§3.4) as a Detectron2 ``DatasetEvaluator``: mIoU*, IoU@0.5/0.75 of the proxy masks."""
import itertools
import json
import logging
import os

from detectron2.data import DatasetCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from wsis.evaluation.pseudo_eval import evaluate_pseudo_masks, mark_all_valid
from wsis.evaluation.pseudo_report import quality_report, quality_summary, quality_warnings

from .proxy_masks import drop_hint, proxy_record

__all__ = ["ProxyMaskEvaluator"]
logger = logging.getLogger(__name__)


class ProxyMaskEvaluator(DatasetEvaluator):
    """
    Proxy masks of every non-crowd GT box of a dataset with GT masks, scored against those masks
    (:func:`wsis.evaluation.pseudo_report.quality_report`, as ``tools/make_pseudo_masks.py``'s metrics.json):
    ``all/*`` scores every mask, dropped ones included (BoxCaseg's mIoU* = ``all/class_mean_iou``), with COCO sizes;
    ``kept_fraction``, ``pixel_coverage``; ``kept/*`` scores the masks that survive the drop; ``drop_rate``. A log
    line summarises it; more than half dropped, or none kept, logs a warning naming the thresholds.

    With ``sweep_thresholds``, every mask is also made at each of those binarisation thresholds: ``sweep/<t>/*``
    scores them (all masks) and ``best_threshold`` is the one with the best ``mean_iou``. Run on the salient training
    images (their masks are supervision), it chooses ``WSIS.BOXCASEG.PROXY_THRESHOLD`` for a model whose maps are
    less peaked or more peaked than the paper's, without looking at any box image's mask.
    """

    def __init__(self, dataset_name, threshold=0.5, merge=True, drop_threshold=0.95, output_dir=None,
                 sweep_thresholds=()):
        self.dataset_name = dataset_name
        self.settings = {"threshold": threshold, "merge": merge, "drop_threshold": drop_threshold}
        self.sweep_thresholds = tuple(float(t) for t in sweep_thresholds)
        if any(not 0.0 <= t < 1.0 for t in self.sweep_thresholds):
            raise ValueError(f"sweep thresholds must lie in [0, 1), got {self.sweep_thresholds}")
        self.output_dir = output_dir
        self.reset()

    def reset(self):
        self.records = {}
        self.sweep_records = {t: {} for t in self.sweep_thresholds}

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            probs = list(out["proxy_probs"].float().cpu().numpy())
            self.records[inp["image_id"]] = proxy_record(inp, inp["annotations"], probs, **self.settings)
            for t, records in self.sweep_records.items():
                records[inp["image_id"]] = proxy_record(inp, inp["annotations"], probs, **{**self.settings,
                                                                                            "threshold": t})

    def evaluate(self):
        """The figures of all processes' records, on every process (an all-gather, as wsis's other evaluators)."""
        parts = comm.all_gather((self.records, self.sweep_records)) if comm.get_world_size() > 1 else \
            [(self.records, self.sweep_records)]
        records = dict(itertools.chain.from_iterable(p[0].items() for p in parts))
        gt = DatasetCatalog.get(self.dataset_name)
        if not any("segmentation" in a for d in gt for a in d["annotations"]):
            raise ValueError(f"{self.dataset_name} has no GT masks to score proxy masks against; register it with "
                             "supervision='mask'")
        res = quality_report(records, gt)
        logger.info(f"{self.dataset_name} proxy masks: " + quality_summary(res))
        for w in quality_warnings(res, drop_hint(self.settings)):
            logger.warning(w)
        for t in self.sweep_thresholds:
            m = evaluate_pseudo_masks(mark_all_valid(dict(itertools.chain.from_iterable(p[1][t].items()
                                                                                      for p in parts))), gt)
            res.update({f"sweep/{t:g}/{k}": m[k] for k in ("mean_iou", "class_mean_iou", "iou@0.5", "iou@0.75")})
        if self.sweep_thresholds:
            res["best_threshold"] = max(self.sweep_thresholds, key=lambda t: res[f"sweep/{t:g}/mean_iou"])
        n = sum(len(r["instances"]) for r in records.values())
        res["drop_rate"] = sum(not i["valid"] for r in records.values() for i in r["instances"]) / max(n, 1)
        if self.output_dir and comm.is_main_process():
            os.makedirs(self.output_dir, exist_ok=True)
            with open(os.path.join(self.output_dir, "proxy_mask_quality.json"), "w") as f:
                json.dump(res, f, indent=1)
        return {"proxy_masks": res}
