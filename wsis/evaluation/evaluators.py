"""Detectron2 glue: ``DatasetEvaluator``s around the pure accumulators (AP^r, PQ)."""
import json
import logging
import os

import numpy as np
import pycocotools.mask as mask_util
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm
from PIL import Image

from .ap_r import InstanceAPAccumulator
from .panoptic_quality import PQAccumulator, panoptic_rgb_to_id

__all__ = ["InstanceAPrEvaluator", "PanopticQualityEvaluator"]

logger = logging.getLogger(__name__)


def _gather_merge(acc):
    """All-gather accumulators and merge them, so that ``evaluate()`` answers on every rank."""
    parts = comm.all_gather(acc) if comm.get_world_size() > 1 else [acc]
    merged = parts[0]
    for p in parts[1:]:
        merged.merge(p)
    return merged


def _save(output_dir, name, results):
    if output_dir and comm.is_main_process():
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, name), "w") as f:
            json.dump(results, f, indent=2)


class InstanceAPrEvaluator(DatasetEvaluator):
    """
    VOC/SDS-style mask AP^r at several IoUs and AP^r_vol (:class:`wsis.evaluation.ap_r.InstanceAPAccumulator`) of
    ``instances.pred_masks`` against the dataset's mask annotations (crowd regions ignored). Results under
    ``"segm_APr"`` in percent, on every rank.
    """

    def __init__(self, dataset_name, iou_thresholds=(0.25, 0.5, 0.7, 0.75), interpolation="voc", output_dir=None):
        self._dataset_name = dataset_name
        self._iou_thresholds = tuple(iou_thresholds)
        self._interpolation = interpolation
        self._output_dir = output_dir
        self._gt = None
        self.reset()

    def _ground_truth(self):
        if self._gt is None:
            self._gt = {d["image_id"]: d for d in DatasetCatalog.get(self._dataset_name)}
        return self._gt

    def reset(self):
        self._acc = None

    def _accumulator(self):
        if self._acc is None:
            self._ground_truth()  # loading fills thing_classes of lazily registered sets
            names = MetadataCatalog.get(self._dataset_name).thing_classes
            self._acc = InstanceAPAccumulator(len(names), class_names=names, iou_thresholds=self._iou_thresholds,
                                              interpolation=self._interpolation)
        return self._acc

    def process(self, inputs, outputs):
        acc = self._accumulator()
        gt_all = self._ground_truth()
        for inp, out in zip(inputs, outputs):
            gt = gt_all[inp["image_id"]]
            h, w = gt["height"], gt["width"]
            gts = []
            for a in gt["annotations"]:
                if "segmentation" not in a:
                    raise ValueError(
                        f"{self._dataset_name}: annotation id {a.get('id')} of image id {inp['image_id']} has no mask; "
                        "AP^r needs mask ground truth"
                    )
                gts.append({"category_id": a["category_id"], "segmentation": a["segmentation"],
                            "iscrowd": a.get("iscrowd", 0)})
            preds = []
            if "instances" in out:
                inst = out["instances"].to("cpu")
                masks = inst.pred_masks.numpy().astype(np.uint8) if inst.has("pred_masks") else None
                if masks is not None and len(inst):
                    rles = mask_util.encode(np.asfortranarray(masks.transpose(1, 2, 0)))
                    for rle, c, s in zip(rles, inst.pred_classes.tolist(), inst.scores.tolist()):
                        preds.append({"category_id": c, "score": s, "segmentation": rle})
            acc.add(preds, gts, image_size=(h, w))

    def evaluate(self):
        acc = _gather_merge(self._accumulator())
        results = {k: float(v) for k, v in acc.summarize().items()}
        _save(self._output_dir, "segm_APr.json", results)
        logger.info(
            f"AP^r on {self._dataset_name} ({acc.num_images} images): "
            + ", ".join(f"{k} {results[k]:.2f}" for k in results if "-" not in k)
        )
        return {"segm_APr": results}


class PanopticQualityEvaluator(DatasetEvaluator):
    """
    PQ / SQ / RQ for all, thing and stuff categories (:class:`wsis.evaluation.panoptic_quality.PQAccumulator`, the
    definition of panopticapi) of ``panoptic_seg`` outputs against the dataset's panoptic PNGs. Category ids are
    mapped back to the json's ids with the metadata's thing/stuff maps, as Detectron2's COCOPanopticEvaluator does.
    Results under ``"panoptic_seg"`` in percent, on every rank; pixels of ids absent from segments_info are void.
    """

    def __init__(self, dataset_name, output_dir=None):
        self._dataset_name = dataset_name
        self._output_dir = output_dir
        md = MetadataCatalog.get(dataset_name)
        self._thing_map = {v: k for k, v in md.thing_dataset_id_to_contiguous_id.items()}
        self._stuff_map = {v: k for k, v in md.stuff_dataset_id_to_contiguous_id.items()}
        self._categories = [
            {"id": k, "isthing": 1, "name": md.thing_classes[v]} for k, v in md.thing_dataset_id_to_contiguous_id.items()
        ] + [{"id": k, "isthing": 0, "name": md.stuff_classes[v]} for k, v in md.stuff_dataset_id_to_contiguous_id.items()]
        self._gt = None
        self.reset()

    def reset(self):
        self._acc = PQAccumulator(self._categories)

    def _dataset_id(self, seg):
        return (self._thing_map if seg.get("isthing", False) else self._stuff_map)[seg["category_id"]]

    def process(self, inputs, outputs):
        if self._gt is None:
            self._gt = {d["image_id"]: d for d in DatasetCatalog.get(self._dataset_name)}
        for inp, out in zip(inputs, outputs):
            gt = self._gt[inp["image_id"]]
            gt_ids = panoptic_rgb_to_id(np.asarray(Image.open(gt["pan_seg_file_name"]).convert("RGB")))
            gt_info = [{"id": s["id"], "category_id": self._dataset_id(s), "iscrowd": s.get("iscrowd", 0)}
                       for s in gt["segments_info"]]
            seg, info = out["panoptic_seg"]
            seg = seg.cpu().numpy().astype(np.int64)
            if info is None:
                raise ValueError("panoptic outputs without segments_info (label-divisor format) are not supported")
            known = {s["id"] for s in info}
            seg[~np.isin(seg, list(known))] = 0
            pred_info = [{"id": s["id"], "category_id": self._dataset_id(s)} for s in info]
            self._acc.add(seg, pred_info, gt_ids, gt_info)

    def evaluate(self):
        acc = _gather_merge(self._acc)
        results = {k: float(v) for k, v in acc.summarize().items()}
        _save(self._output_dir, "panoptic_quality.json", results)
        logger.info(f"PQ on {self._dataset_name}: " + ", ".join(
            f"{k} {results[k]:.2f}" for k in ("PQ", "SQ", "RQ", "PQ_th", "PQ_st") if k in results))
        return {"panoptic_seg": results}
