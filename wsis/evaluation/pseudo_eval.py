"""Evaluate a pseudo-mask store against the ground-truth masks of its source dataset (detectron2-free)."""
import numpy as np

from wsis.core.masks import to_bool_mask
from wsis.core.semantic import IGNORE_LABEL, semantic_from_record, semantic_map

from .pseudo_quality import PseudoInstanceQualityAccumulator, PseudoPixelQualityAccumulator

#: COCO's object sizes by area in pixels: small < 32², medium < 96², large ≥ 96² (here: the GT mask's area).
SIZES = (("small", 0, 32 ** 2), ("medium", 32 ** 2, 96 ** 2), ("large", 96 ** 2, float("inf")))


def evaluate_pseudo_masks(records, gt_dicts, num_classes=None, missing="skip"):
    """
    Quality of pseudo masks (``{image_id: record}`` from ``load_pseudo_masks``) against the masks of ``gt_dicts``
    (``load_coco_instances(..., supervision="mask")``), paired by annotation id.

    Returns:
        dict of floats (fractions in [0, 1]): instance level ``mean_iou``, ``class_mean_iou`` (BoxCaseg's mIoU*),
        ``iou@0.5``, ``iou@0.75``, ``num_instances``, ``num_invalid``, ``num_missing`` (GT instances without a
        pseudo mask); pixel level ``pixel_precision``, ``pixel_recall``, ``pixel_fraction_ignored``, ``pixel_miou``
        (background + classes, crowd regions not evaluated). Images of ``records`` absent from ``gt_dicts`` and
        ground truth without masks are not evaluated (``num_gt_without_mask`` counts the latter). Per COCO size
        (:data:`SIZES`, by GT mask area): ``<size>/mean_iou`` and ``<size>/num_instances``. ``pixel_coverage``:
        the fraction of GT instance pixels inside a valid pseudo mask (what supervises the mask loss).

    Args:
        missing (str): a GT instance without a pseudo instance: "skip" (counted in ``num_missing`` only) or
            "empty" (scored as an empty mask, IoU 0; the images of ``gt_dicts`` without a record count too).
    """
    if missing not in ("skip", "empty"):
        raise ValueError(f"missing must be 'skip' or 'empty', got {missing!r}")
    by_id = {d["image_id"]: d for d in gt_dicts}
    if num_classes is None:
        num_classes = 1 + max([a["category_id"] for d in gt_dicts for a in d["annotations"]], default=0)
    inst_acc = PseudoInstanceQualityAccumulator()
    by_size = {name: PseudoInstanceQualityAccumulator() for name, _, _ in SIZES}
    gt_pixels = covered = 0
    pix_acc = PseudoPixelQualityAccumulator(num_classes + 1, ignore_label=IGNORE_LABEL, background_id=0)
    missing_as_empty = missing == "empty"
    num_missing = no_mask = 0
    ids = sorted(set(records) | set(by_id)) if missing_as_empty else sorted(records)
    for image_id in ids:
        if image_id not in by_id:
            continue
        gt = by_id[image_id]
        rec = records.get(image_id, {"image_id": image_id, "height": gt["height"], "width": gt["width"],
                                     "ignore": None, "instances": []})  # an image without a record: all missing
        h, w = gt["height"], gt["width"]
        pseudo = {i["annotation_id"]: i for i in rec["instances"] if i.get("annotation_id") is not None}
        image_ignore = to_bool_mask(rec["ignore"]) if rec.get("ignore") else np.zeros((h, w), dtype=bool)
        gt_masks, gt_classes, crowd = [], [], np.zeros((h, w), dtype=bool)
        for a in gt["annotations"]:
            if "segmentation" not in a:
                no_mask += 1
                continue
            m = to_bool_mask(a["segmentation"], h, w)
            if a.get("iscrowd", 0):
                crowd |= m
                continue
            gt_masks.append(m)
            gt_classes.append(a["category_id"])
            p = pseudo.get(a["id"])
            if p is None:
                num_missing += 1
                if missing_as_empty:
                    p = {"segmentation": np.zeros((h, w), dtype=bool), "valid": True}
                else:
                    continue
            ign = image_ignore | (to_bool_mask(p["ignore"]) if p.get("ignore") else False)
            args = (p["segmentation"] if p["valid"] else None, m, a["category_id"])
            kwargs = dict(ignore=ign if ign.any() else None, valid=p["valid"])
            inst_acc.add(*args, **kwargs)
            area = int(np.count_nonzero(m))
            by_size[next(n for n, lo, hi in SIZES if lo <= area < hi)].add(*args, **kwargs)
        gt_fg = np.zeros((h, w), dtype=bool)
        for m in gt_masks:
            gt_fg |= m
        valid_fg = np.zeros((h, w), dtype=bool)
        for i in rec["instances"]:
            if i["valid"]:
                valid_fg |= to_bool_mask(i["segmentation"])
        gt_pixels += int(np.count_nonzero(gt_fg))
        covered += int(np.count_nonzero(gt_fg & valid_fg))
        pix_acc.add(semantic_from_record(rec, instance_ignore="ignore", dtype=np.int64),
                    semantic_map(gt_masks, gt_classes, h, w, crowd))
    out = dict(inst_acc.summarize())
    pix = pix_acc.summarize()
    for k in ("precision", "recall", "fraction_ignored", "miou"):
        out[f"pixel_{k}"] = pix[k]
    for name, acc in by_size.items():
        size = acc.summarize()
        out[f"{name}/mean_iou"], out[f"{name}/num_instances"] = size["mean_iou"], size["num_instances"]
    out["pixel_coverage"] = covered / gt_pixels if gt_pixels else 0.0
    out["num_missing"] = num_missing
    out["num_gt_without_mask"] = no_mask
    return out


def mark_all_valid(records):
    """
    Copies of store records in which every instance is valid, so that dropped or empty masks are scored (an empty
    one with IoU 0) instead of left out: the fair comparison of generators that drop different instances.
    """
    return {k: dict(r, instances=[dict(i, valid=True) for i in r["instances"]]) for k, r in records.items()}
