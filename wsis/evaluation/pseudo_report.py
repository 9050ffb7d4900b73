"""
The quality report of a pseudo-mask store, as every pseudo-label command and evaluator shows it: figures over
**every** GT instance first, so that dropped masks cannot hide (a store that drops 422 of 423 masks must not read
"mean IoU 0.756"), then the kept masks' figures, labelled as such, and warnings.
"""
from wsis.core.masks import to_bool_mask

from .ap_r import InstanceAPAccumulator
from .pseudo_eval import SIZES, score_pseudo_masks, without_ignore

__all__ = ["quality_report", "generated_quality_report", "has_generated_instances", "quality_summary",
           "quality_warnings", "SCORING", "INSTANCE_KEYS", "GENERATED_SCORING"]

INSTANCE_KEYS = ("mean_iou", "class_mean_iou", "iou@0.5", "iou@0.75")
#: How ``all/*`` scores the instances without a usable mask.
SCORING = ("all/*: every GT instance; a dropped mask is scored as stored, a GT instance without a pseudo instance "
           "as an empty mask (IoU 0); kept/*: only the masks stored valid (what trains the mask loss)")


def quality_report(records, gt_dicts, num_classes=None):
    """
    Returns:
        dict, in this order: ``all/<k>`` for k in :data:`INSTANCE_KEYS`, ``all/strict_mean_iou`` (ignored pixels
        counted as not the object's, :func:`.pseudo_eval.without_ignore`), ``all/<size>/mean_iou`` /
        ``all/<size>/num_instances`` (COCO sizes); ``kept_fraction`` (valid masks / GT instances),
        ``pixel_coverage`` (GT instance pixels inside a valid mask); ``kept/*`` likewise; counts
        (``num_instances`` = GT instances scored, ``num_kept``, ``num_dropped``, ``num_missing``,
        ``num_gt_without_mask``); the pixel figures of the store as training sees it (``pixel_*``). Floats and
        ints only (a Detectron2 evaluator's result); :data:`SCORING` says how ``all/*`` scores.
    """
    kept, every = score_pseudo_masks(records, gt_dicts, num_classes)
    has_ignore = any(r.get("ignore") or any(i.get("ignore") for i in r["instances"]) for r in records.values())
    strict = score_pseudo_masks(without_ignore(records), gt_dicts, num_classes)[1] if has_ignore else every
    total = every["num_instances"]
    out = {}
    for prefix, m in (("all", every), ("kept", kept)):
        if prefix == "kept":
            out["kept_fraction"] = kept["num_instances"] / total if total else 0.0
            out["pixel_coverage"] = kept["pixel_coverage"]
        out.update({f"{prefix}/{k}": m[k] for k in INSTANCE_KEYS})
        if prefix == "all":
            out["all/strict_mean_iou"] = strict["mean_iou"]
        for name, _, _ in SIZES:
            out[f"{prefix}/{name}/mean_iou"] = m[f"{name}/mean_iou"]
            out[f"{prefix}/{name}/num_instances"] = m[f"{name}/num_instances"]
    out.update(num_instances=total, num_kept=kept["num_instances"], num_dropped=kept["num_invalid"],
               num_missing=kept["num_missing"], num_gt_without_mask=kept["num_gt_without_mask"])
    out.update({k: v for k, v in kept.items() if k.startswith("pixel_") and k != "pixel_coverage"})
    return out


#: How :func:`generated_quality_report` scores a store of instances made from tags.
GENERATED_SCORING = ("instances made from tags (annotation_id null) pair with no annotation: AP^r of the stored "
                     "instances by their scores against every non-crowd GT mask (VOC interpolation), pixel_* from the "
                     "stored instances' semantic map")


def has_generated_instances(records):
    """True when a store holds instances a generator created without a source annotation (e.g. from tags)."""
    return any(i.get("annotation_id") is None for r in records.values() for i in r["instances"])


def generated_quality_report(records, gt_dicts, num_classes=None, iou_thresholds=(0.25, 0.5, 0.75)):
    """
    The quality of instance pseudo labels made from image tags (IRNet's Table 1): ``AP^r@<t>`` (percent) for
    ``iou_thresholds``, ``AP^r_vol``, ``num_classes_evaluated``, ``num_pseudo_instances``, ``num_gt_instances``
    over the images of ``gt_dicts`` (an image without a record counts with no prediction), and the pixel figures
    ``pixel_precision``, ``pixel_recall``, ``pixel_miou`` (background + classes) of the records.
    """
    if num_classes is None:
        num_classes = 1 + max([a["category_id"] for d in gt_dicts for a in d["annotations"]], default=0)
    acc = InstanceAPAccumulator(num_classes, iou_thresholds=iou_thresholds)
    num_pred = num_gt = 0
    for d in sorted(gt_dicts, key=lambda d: d["image_id"]):
        rec = records.get(d["image_id"])
        h, w = d["height"], d["width"]
        preds = [{"category_id": i["category_id"], "score": i["score"], "segmentation": i["segmentation"]}
                 for i in (rec["instances"] if rec else []) if i["valid"]]
        gts = [{"category_id": a["category_id"], "segmentation": to_bool_mask(a["segmentation"], h, w),
                "iscrowd": a.get("iscrowd", 0)} for a in d["annotations"] if "segmentation" in a]
        acc.add(preds, gts, (h, w))
        num_pred += len(preds)
        num_gt += sum(not g["iscrowd"] for g in gts)
    out = acc.summarize()
    out.update(num_pseudo_instances=num_pred, num_gt_instances=num_gt)
    kept, _ = score_pseudo_masks(records, gt_dicts, num_classes)
    out.update({k: kept[k] for k in ("pixel_precision", "pixel_recall", "pixel_miou")})
    return out


def quality_warnings(report, hint="the generator's drop settings"):
    """One line per problem: more than half of the GT instances without a valid mask, or none left."""
    total, kept = report["num_instances"], report["num_kept"]
    if not total:
        return []
    if kept == 0:
        return [f"no valid pseudo mask remains ({report['num_dropped']} dropped, {report['num_missing']} missing of "
                f"{total}): the mask loss gets no supervision; look at {hint}"]
    if kept < total / 2:
        return [f"{total - kept} of {total} GT instances ({1 - report['kept_fraction']:.0%}) have no valid pseudo "
                f"mask; kept/* describes only {kept} masks and all/mean_iou is {report['all/mean_iou']:.3f}; look at "
                f"{hint}"]
    return []


def quality_summary(report):
    """The one log line of a report: all instances first, then the kept ones, labelled."""
    total = report["num_instances"]
    sizes = ", ".join(f"{n} {report[f'all/{n}/mean_iou']:.3f} ({report[f'all/{n}/num_instances']})"
                      for n, _, _ in SIZES)
    return (f"quality over all {total} GT instances (dropped masks as stored, missing as empty): "
            + ", ".join(f"{k} {report[f'all/{k}']:.3f}" for k in INSTANCE_KEYS)
            + (f", strict_mean_iou {report['all/strict_mean_iou']:.3f}" if "all/strict_mean_iou" in report else "")
            + f"; by size: {sizes}; kept {report['num_kept']} of {total} ({report['kept_fraction']:.1%}), pixel "
            f"coverage {report['pixel_coverage']:.3f}; kept masks only: "
            + ", ".join(f"{k} {report[f'kept/{k}']:.3f}" for k in INSTANCE_KEYS)
            + f"; pixel precision {report.get('pixel_precision', 0.0):.3f}, recall {report.get('pixel_recall', 0.0):.3f}")
