"""Attaching pseudo-mask records to Detectron2 dataset dicts (the step between the store and training)."""
import logging
from collections.abc import Mapping

__all__ = ["attach_pseudo_masks"]
logger = logging.getLogger("wsis.data.pseudo_store")


def _has_mask(segmentation):
    return isinstance(segmentation, Mapping) or (isinstance(segmentation, list) and len(segmentation) > 0)


def attach_pseudo_masks(dataset_dicts, records, *, keep_existing_masks=False):
    """Return copies of Detectron2 dataset dicts carrying the pseudo masks; the inputs are not modified.

    Per annotation (matched to the pseudo instances by its ``"id"``):

    * with a pseudo instance: ``"segmentation"`` = its RLE, ``"mask_valid"`` = its ``valid`` flag,
      ``"pseudo_mask"`` = True, and ``"ignore_segmentation"`` = its own ignore region (RLE) when it has one: pixels
      that give no loss **to this instance only** (WSPS's same-class overlaps stay negatives for the others);
    * without one: ``"mask_valid"`` = False, box and class kept, ``"segmentation"`` removed (the convention of
      :mod:`wsis.data.coco_weak`; no ground-truth mask leaks into weak training);
    * ``keep_existing_masks=True`` (the semi-supervised setting) first keeps an annotation's own registered
      ``"segmentation"`` (polygons or RLE, non-empty, unless its ``"mask_valid"`` is already False) with
      ``"mask_valid"`` = True, whether or not a pseudo instance exists for it: real masks where the dataset has
      them, pseudo masks for the rest. How many instances train on registered masks is logged.

    Crowd annotations without a pseudo instance are left as they are. Pseudo instances with ``annotation_id`` null are appended as new annotations (bbox_mode 1 = XYWH_ABS,
    iscrowd 0, no ``"id"``). Per image, ``"ignore_mask"`` is the record's image-level ignore (RLE or None: pixels of
    no instance, e.g. crowd or unclaimed regions, that give no loss to any); images without a record keep an
    existing ``"ignore_mask"`` or get None. No mask is decoded.

    Args:
        dataset_dicts (list[dict]): Detectron2 dataset dicts whose annotations carry ``"id"``.
        records (dict[int, dict] or iterable of dict): as returned by :func:`load_pseudo_masks`.
    """
    if not isinstance(records, Mapping):
        records = {r["image_id"]: r for r in records}
    out, seen = [], set()
    counts = {"valid": 0, "invalid": 0, "no pseudo mask": 0, "kept": 0, "generated": 0}
    for d in dataset_dicts:
        new = dict(d)
        record = records.get(d["image_id"])
        by_id, generated = {}, []
        if record is not None:
            seen.add(d["image_id"])
            for inst in record["instances"]:
                if inst["annotation_id"] is None:
                    generated.append(inst)
                else:
                    by_id[inst["annotation_id"]] = inst
        annotations = []
        for ann in d.get("annotations", ()):
            ann = dict(ann)
            ann.pop("ignore_segmentation", None)
            inst = by_id.get(ann.get("id"))
            if ann.get("iscrowd", 0) and inst is None:  # crowd regions: as registered (no instance, no loss)
                annotations.append(ann)
                continue
            if keep_existing_masks and _has_mask(ann.get("segmentation")) and ann.get("mask_valid", True) and \
                    not ann.get("pseudo_mask", False):
                ann["mask_valid"] = True
                counts["kept"] += 1
            elif inst is not None:
                ann.update(_pseudo_fields(inst))
                counts["valid" if inst["valid"] else "invalid"] += 1
            else:
                ann.pop("segmentation", None)
                ann.pop("pseudo_mask", None)
                ann["mask_valid"] = False
                counts["no pseudo mask"] += 1
            annotations.append(ann)
        for inst in generated:
            annotations.append({"bbox": list(inst["bbox"]), "bbox_mode": 1, "category_id": inst["category_id"],
                                "iscrowd": 0, **_pseudo_fields(inst)})
            counts["generated"] += 1
        if "annotations" in d or generated:
            new["annotations"] = annotations
        if record is not None:
            new["ignore_mask"] = dict(record["ignore"]) if record["ignore"] is not None else None
        else:
            new["ignore_mask"] = d.get("ignore_mask")
        out.append(new)
    unused = len(set(records) - seen)
    if unused:
        logger.warning("%d pseudo-mask records have no image in the dataset and were not attached", unused)
    logger.info("Attached pseudo masks to %d of %d images: %s", len(seen), len(out),
                ", ".join(f"{v} {k}" for k, v in counts.items()))
    if counts["kept"]:
        logger.warning("%d instances train on their registered (ground-truth) masks, not on pseudo masks "
                       "(keep_existing_masks=True, WSIS.DATA.KEEP_GT_MASKS)", counts["kept"])
    return out


def _pseudo_fields(inst):
    """The annotation keys of a pseudo instance."""
    fields = {"segmentation": dict(inst["segmentation"]), "mask_valid": inst["valid"], "pseudo_mask": True}
    if inst["ignore"] is not None:
        fields["ignore_segmentation"] = dict(inst["ignore"])
    return fields
