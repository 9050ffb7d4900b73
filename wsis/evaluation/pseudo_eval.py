"""Evaluate a pseudo-mask store against the ground-truth masks of its source dataset (detectron2-free)."""
import numpy as np

from .masks import to_bool_mask
from .pseudo_quality import PseudoInstanceQualityAccumulator, PseudoPixelQualityAccumulator

IGNORE_LABEL = 255


def semantic_map(masks, classes, height, width, ignore=None):
    """
    Paint instance masks into an (H, W) semantic map: 0 = background, class ``c`` → ``c + 1``; where instances
    overlap the smallest one wins (its pixels are the most specific); ``ignore`` pixels → 255.

    Args:
        masks (list[ndarray[bool]]): (H, W) masks. classes (list[int]): contiguous class of each.
        ignore (ndarray[bool] or None): (H, W).
    """
    out = np.zeros((height, width), dtype=np.int64)
    order = np.argsort([-int(m.sum()) for m in masks], kind="stable")
    for i in order:
        out[masks[i]] = int(classes[i]) + 1
    if ignore is not None:
        out[ignore] = IGNORE_LABEL
    return out


def evaluate_pseudo_masks(records, gt_dicts, num_classes=None):
    """
    Quality of pseudo masks (``{image_id: record}`` from ``load_pseudo_masks``) against the masks of ``gt_dicts``
    (``load_coco_instances(..., supervision="mask")``), paired by annotation id.

    Returns:
        dict of floats (fractions in [0, 1]): instance level ``mean_iou``, ``class_mean_iou`` (BoxCaseg's mIoU*),
        ``iou@0.5``, ``iou@0.75``, ``num_instances``, ``num_invalid``, ``num_missing`` (GT instances without a
        pseudo mask); pixel level ``pixel_precision``, ``pixel_recall``, ``pixel_fraction_ignored``, ``pixel_miou``
        (background + classes, crowd regions not evaluated). Images of ``records`` absent from ``gt_dicts`` and
        ground truth without masks are not evaluated (``num_gt_without_mask`` counts the latter).
    """
    by_id = {d["image_id"]: d for d in gt_dicts}
    if num_classes is None:
        num_classes = 1 + max([a["category_id"] for d in gt_dicts for a in d["annotations"]], default=0)
    inst_acc = PseudoInstanceQualityAccumulator()
    pix_acc = PseudoPixelQualityAccumulator(num_classes + 1, ignore_label=IGNORE_LABEL, background_id=0)
    missing = no_mask = 0
    for image_id in sorted(records):
        if image_id not in by_id:
            continue
        rec, gt = records[image_id], by_id[image_id]
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
                missing += 1
                continue
            ign = image_ignore | (to_bool_mask(p["ignore"]) if p.get("ignore") else False)
            inst_acc.add(p["segmentation"] if p["valid"] else None, m, a["category_id"],
                         ignore=ign if ign.any() else None, valid=p["valid"])
        p_masks = [to_bool_mask(i["segmentation"]) for i in rec["instances"] if i["valid"]]
        p_classes = [i["category_id"] for i in rec["instances"] if i["valid"]]
        p_ignore = image_ignore.copy()
        for i in rec["instances"]:
            if i.get("ignore"):
                p_ignore |= to_bool_mask(i["ignore"])
        pix_acc.add(semantic_map(p_masks, p_classes, h, w, p_ignore), semantic_map(gt_masks, gt_classes, h, w, crowd))
    out = dict(inst_acc.summarize())
    pix = pix_acc.summarize()
    for k in ("precision", "recall", "fraction_ignored", "miou"):
        out[f"pixel_{k}"] = pix[k]
    out["num_missing"] = missing
    out["num_gt_without_mask"] = no_mask
    return out


def mark_all_valid(records):
    """
    Copies of store records in which every instance is valid, so that dropped or empty masks are scored (an empty
    one with IoU 0) instead of left out: the fair comparison of generators that drop different instances.
    """
    return {k: dict(r, instances=[dict(i, valid=True) for i in r["instances"]]) for k, r in records.items()}
