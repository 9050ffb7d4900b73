"""Detectron2 glue: ``DatasetEvaluator``s around the pure accumulators (AP^r, PQ, multi-label classification)."""
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
from .classification import multilabel_metrics
from .panoptic_quality import PQAccumulator, panoptic_rgb_to_id
from .pseudo_quality import PseudoPixelQualityAccumulator

__all__ = ["InstanceAPrEvaluator", "PanopticQualityEvaluator", "PanopticSegmentEvaluator",
           "MultiLabelClassificationEvaluator"]

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
        for inp, out in zip(inputs, outputs):
            gt, gt_ids = _panoptic_truth(self, inp["image_id"])
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


def _panoptic_truth(evaluator, image_id):
    """(dataset dict, (H, W) segment ids) of a panoptic set's image; the evaluator's ``_gt`` caches the dicts."""
    if evaluator._gt is None:
        evaluator._gt = {d["image_id"]: d for d in DatasetCatalog.get(evaluator._dataset_name)}
    gt = evaluator._gt[image_id]
    return gt, panoptic_rgb_to_id(np.asarray(Image.open(gt["pan_seg_file_name"]).convert("RGB")))


class PanopticSegmentEvaluator(DatasetEvaluator):
    """
    The other two measures of a panoptic model against a panoptic set's ground truth (``pan_seg_file_name`` +
    ``segments_info``, contiguous ``category_id``): mask AP^r at ``iou_thresholds`` and AP^r_vol of the output's
    segments (``panoptic_seg``, ranked by their ``score``) against every GT segment (crowd ones as crowd regions),
    for all classes, things (``AP^r_th``) and stuff (``AP^r_st``), as WSPS's Tab. 5-6; and mIoU of the arg max of
    ``sem_seg`` (C, H, W) against the GT's segment classes (void ignored). Results under ``"panoptic_segments"``
    in percent, on every rank.
    """

    def __init__(self, dataset_name, iou_thresholds=(0.5, 0.75), output_dir=None):
        self._dataset_name, self._output_dir = dataset_name, output_dir
        md = MetadataCatalog.get(dataset_name)
        self._names = list(md.stuff_classes if len(md.get("stuff_classes", [])) > len(md.thing_classes)
                           else md.thing_classes)
        self._isthing = {v: True for v in md.thing_dataset_id_to_contiguous_id.values()}
        self._isthing.update({v: False for v in md.get("stuff_dataset_id_to_contiguous_id", {}).values()})
        self._iou_thresholds = tuple(iou_thresholds)
        self._gt = None
        self.reset()

    def reset(self):
        k = len(self._names)
        self._ap = {part: InstanceAPAccumulator(k, iou_thresholds=self._iou_thresholds) for part in ("", "_th", "_st")}
        self._miou = PseudoPixelQualityAccumulator(k, background_id=None, class_names=self._names)

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            gt, gt_ids = _panoptic_truth(self, inp["image_id"])
            gts = [{"category_id": s["category_id"], "segmentation": gt_ids == s["id"], "iscrowd": s.get("iscrowd", 0)}
                   for s in gt["segments_info"]]
            preds = []
            if "panoptic_seg" in out:
                seg, info = out["panoptic_seg"]
                seg = seg.cpu().numpy()
                preds = [{"category_id": s["category_id"], "score": s.get("score", 1.0), "segmentation": seg == s["id"]}
                         for s in info]
            for part, keep in (("", None), ("_th", True), ("_st", False)):
                self._ap[part].add([p for p in preds if keep is None or self._isthing[p["category_id"]] == keep],
                                   [g for g in gts if keep is None or self._isthing[g["category_id"]] == keep],
                                   image_size=gt_ids.shape)
            if "sem_seg" in out:
                labels = np.full(gt_ids.shape, 255, np.int64)
                for s in gt["segments_info"]:
                    labels[gt_ids == s["id"]] = s["category_id"]
                self._miou.add(out["sem_seg"].argmax(0).cpu().numpy(), labels)

    def evaluate(self):
        results = {}
        for part, acc in self._ap.items():
            acc = _gather_merge(acc)
            results.update({k.replace("AP^r", f"AP^r{part}", 1): float(v) for k, v in acc.summarize().items()
                            if "-" not in k})
        miou = _gather_merge(self._miou).summarize()
        results["mIoU"] = 100.0 * miou["miou"]
        _save(self._output_dir, "panoptic_segments.json", results)
        logger.info(f"panoptic segments on {self._dataset_name}: "
                    + ", ".join(f"{k} {v:.2f}" for k, v in results.items()))
        return {"panoptic_segments": results}


class MultiLabelClassificationEvaluator(DatasetEvaluator):
    """
    Multi-label image classification (:func:`wsis.evaluation.classification.multilabel_metrics`: mAP, F1,
    precision, recall) of each output's ``"image_scores"`` (K,) against the inputs' ``"image_labels"`` (the image
    tags; the test mapper keeps them). Results under ``"classification"`` in percent, on every rank.
    """

    def __init__(self, dataset_name, threshold=0.5, output_dir=None):
        self._dataset_name = dataset_name
        self._threshold = float(threshold)
        self._output_dir = output_dir
        self.reset()

    def reset(self):
        self._rows = []  # (image_id, scores (K,), tags)

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            if "image_labels" not in inp:
                raise ValueError(f"{self._dataset_name}: image id {inp.get('image_id')} ({inp.get('file_name')}) has "
                                 "no 'image_labels'; classification needs the image tags")
            scores = out["image_scores"].detach().float().cpu().numpy()
            self._rows.append((inp["image_id"], scores, list(inp["image_labels"])))

    def evaluate(self):
        rows = [r for part in comm.all_gather(self._rows) for r in part] if comm.get_world_size() > 1 else self._rows
        rows = sorted({r[0]: r for r in rows}.values(), key=lambda r: r[0])
        if not hasattr(MetadataCatalog.get(self._dataset_name), "thing_classes"):
            DatasetCatalog.get(self._dataset_name)  # (lazily registered sets fill their classes when loaded)
        names = MetadataCatalog.get(self._dataset_name).get("thing_classes", None)
        num_classes = len(rows[0][1]) if rows else len(names or ())
        scores = np.stack([r[1] for r in rows]) if rows else np.zeros((0, num_classes))
        targets = np.zeros_like(scores)
        for i, (image_id, _, tags) in enumerate(rows):
            if any(not 0 <= t < num_classes for t in tags):
                raise ValueError(f"{self._dataset_name}: image id {image_id} has tags {tags} outside 0..{num_classes - 1}")
            targets[i, tags] = 1
        metrics = multilabel_metrics(scores, targets, threshold=self._threshold,
                                     class_names=names if names and len(names) == num_classes else None)
        results = {k: (100.0 * v if k != "num_images" else v) for k, v in metrics.items()}
        _save(self._output_dir, "classification.json", results)
        logger.info(f"classification on {self._dataset_name} ({len(rows)} images): "
                    + ", ".join(f"{k} {results[k]:.2f}" for k in ("mAP", "F1", "precision", "recall") if k in results))
        return {"classification": results}
