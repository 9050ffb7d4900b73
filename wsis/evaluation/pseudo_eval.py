"""Evaluate a pseudo-mask store against the ground-truth masks of its source dataset (detectron2-free)."""
import numpy as np

from wsis.core.masks import to_bool_mask
from wsis.core.semantic import IGNORE_LABEL, semantic_from_record, semantic_map

from .pseudo_quality import PseudoInstanceQualityAccumulator, PseudoPixelQualityAccumulator

#: COCO's object sizes by area in pixels: small < 32², medium < 96², large ≥ 96² (here: the GT mask's area).
SIZES = (("small", 0, 32 ** 2), ("medium", 32 ** 2, 96 ** 2), ("large", 96 ** 2, float("inf")))


def evaluate_pseudo_masks(records, gt_dicts, num_classes=None):
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
    """
    return score_pseudo_masks(records, gt_dicts, num_classes)[0]


class _Instances:
    """Instance IoUs overall and per COCO size."""

    def __init__(self):
        self.all = PseudoInstanceQualityAccumulator()
        self.by_size = {name: PseudoInstanceQualityAccumulator() for name, _, _ in SIZES}

    def add(self, area, *args, **kwargs):
        self.all.add(*args, **kwargs)
        self.by_size[next(n for n, lo, hi in SIZES if lo <= area < hi)].add(*args, **kwargs)

    def summarize(self):
        out = dict(self.all.summarize())
        for name, acc in self.by_size.items():
            size = acc.summarize()
            out[f"{name}/mean_iou"], out[f"{name}/num_instances"] = size["mean_iou"], size["num_instances"]
        return out


def score_pseudo_masks(records, gt_dicts, num_classes=None):
    """
    One pass over the store and the ground truth, scored two ways.

    Returns:
        (kept, every): ``kept`` is :func:`evaluate_pseudo_masks`'s dict (the valid masks, as training sees them);
        ``every`` holds its instance figures (``mean_iou``, ..., ``<size>/*``, ``num_instances``) over every GT
        instance of ``gt_dicts``: a dropped mask scored as stored, a GT instance without a pseudo instance (also in
        an image without a record) as an empty mask.
    """
    by_id = {d["image_id"]: d for d in gt_dicts}
    if num_classes is None:
        num_classes = 1 + max([a["category_id"] for d in gt_dicts for a in d["annotations"]], default=0)
    kept, every = _Instances(), _Instances()
    pix_acc = PseudoPixelQualityAccumulator(num_classes + 1, ignore_label=IGNORE_LABEL, background_id=0)
    gt_pixels = covered = num_missing = no_mask = 0
    for image_id in sorted(by_id):
        gt, rec = by_id[image_id], records.get(image_id)
        h, w = gt["height"], gt["width"]
        instances = rec["instances"] if rec else []
        pseudo = {i["annotation_id"]: i for i in instances if i.get("annotation_id") is not None}
        masks = [to_bool_mask(i["segmentation"]) for i in instances]  # decoded once per image
        mask_of = {id(i): m for i, m in zip(instances, masks)}
        image_ignore = to_bool_mask(rec["ignore"]) if rec and rec.get("ignore") else np.zeros((h, w), dtype=bool)
        gt_masks, gt_classes, crowd = [], [], np.zeros((h, w), dtype=bool)
        for a in gt["annotations"]:
            if "segmentation" not in a:
                no_mask += rec is not None
                continue
            m = to_bool_mask(a["segmentation"], h, w)
            if a.get("iscrowd", 0):
                crowd |= m
                continue
            gt_masks.append(m)
            gt_classes.append(a["category_id"])
            area, p = int(np.count_nonzero(m)), pseudo.get(a["id"])
            if p is None:
                num_missing += rec is not None
                every.add(area, np.zeros((h, w), dtype=bool), m, a["category_id"],
                          ignore=image_ignore if image_ignore.any() else None)
                continue
            ign = image_ignore | (to_bool_mask(p["ignore"]) if p.get("ignore") else False)
            ign = ign if ign.any() else None
            every.add(area, mask_of[id(p)], m, a["category_id"], ignore=ign)
            kept.add(area, mask_of[id(p)] if p["valid"] else None, m, a["category_id"], ignore=ign,
                     valid=p["valid"])
        if rec is None:  # not in the store: only the every-instance figures see this image
            continue
        gt_fg = np.zeros((h, w), dtype=bool)
        for m in gt_masks:
            gt_fg |= m
        valid_fg = np.zeros((h, w), dtype=bool)
        for i, mask in zip(instances, masks):
            if i["valid"]:
                valid_fg |= mask
        gt_pixels += int(np.count_nonzero(gt_fg))
        covered += int(np.count_nonzero(gt_fg & valid_fg))
        pix_acc.add(semantic_from_record(rec, instance_ignore="ignore", dtype=np.int64),
                    semantic_map(gt_masks, gt_classes, h, w, crowd))
    out = kept.summarize()
    pix = pix_acc.summarize()
    for k in ("precision", "recall", "fraction_ignored", "miou"):
        out[f"pixel_{k}"] = pix[k]
    out["pixel_coverage"] = covered / gt_pixels if gt_pixels else 0.0
    out["num_missing"] = num_missing
    out["num_gt_without_mask"] = no_mask
    return out, every.summarize()


def mark_all_valid(records):
    """
    Copies of store records in which every instance is valid, so that dropped or empty masks are scored (an empty
    one with IoU 0) instead of left out: the fair comparison of generators that drop different instances.
    """
    return {k: dict(r, instances=[dict(i, valid=True) for i in r["instances"]]) for k, r in records.items()}


def without_ignore(records):
    """
    Copies of store records with every ignore region (image-level and per instance) dropped: ignored pixels then
    count as not the object's. Scored with :func:`score_pseudo_masks`, this is the "strict" IoU, the fair comparison
    of labels with and without ignore regions.
    """
    return {k: dict(r, ignore=None, instances=[dict(i, ignore=None) for i in r["instances"]])
            for k, r in records.items()}
