"""
The semantic label map of instance masks, with the one overlap rule of wsis, and of a pseudo-mask store record.

Labels: 0 background, contiguous class ``c`` → ``c + 1``, :data:`IGNORE_LABEL` (255) for ignored pixels. Where
instances overlap, **the smallest instance wins** (its pixels are the most specific; the same rule as
:func:`wsis.core.merge.paint_smallest_last`, WSPS's smaller-box rule and BoxCaseg's "smaller object better").
"""
import os

import numpy as np

from .io import atomic_write_png
from .masks import decode_mask
from .merge import smallest_last_order

__all__ = ["IGNORE_LABEL", "semantic_map", "semantic_from_record", "write_label_png", "write_semantic_pngs"]

IGNORE_LABEL = 255


def semantic_map(masks, classes, height, width, ignore=None, dtype=np.int64):
    """
    Args:
        masks (list[ndarray[bool]]): N (H, W) masks. classes (list[int]): the contiguous class of each.
        ignore (ndarray[bool] or None): (H, W) pixels set to :data:`IGNORE_LABEL` after the instances.

    Returns:
        ndarray: (H, W) labels of ``dtype``; overlaps go to the smallest mask (ties: the later one).
    """
    out = np.zeros((height, width), dtype=dtype)
    for i in smallest_last_order([int(np.count_nonzero(m)) for m in masks]):
        out[masks[i]] = int(classes[i]) + 1
    if ignore is not None:
        out[ignore] = IGNORE_LABEL
    return out


def semantic_from_record(record, instance_ignore="class", dtype=np.uint8):
    """
    The (H, W) semantic map of a store record (:func:`semantic_map` of its valid masks; the record's image-level
    ``ignore`` → 255).

    Args:
        instance_ignore (str): what an instance's own ignore region (WSPS's same-class overlaps) becomes:
            "class" (the pixels take the instance's class where no instance mask covers them: the class of those
            pixels is certain, only the instance is not; WSPS Fig. 2b's label maps) or "ignore" (255: the pixels give no loss to that instance, as in training;
            the pixel metrics of :func:`wsis.evaluation.evaluate_pseudo_masks`).
    """
    if instance_ignore not in ("class", "ignore"):
        raise ValueError(f"instance_ignore must be 'class' or 'ignore', got {instance_ignore!r}")
    h, w = record["height"], record["width"]
    masks, classes, own = [], [], []
    ignore = decode_mask(record["ignore"]) if record.get("ignore") else np.zeros((h, w), dtype=bool)
    for inst in record["instances"]:
        if dtype == np.uint8 and inst["category_id"] + 1 >= IGNORE_LABEL:
            raise ValueError(f"image id {record['image_id']}: category {inst['category_id']} does not fit an 8-bit "
                             "label map")
        own_ignore = decode_mask(inst["ignore"]) if inst.get("ignore") else None
        mask = decode_mask(inst["segmentation"]) if inst.get("valid", True) else np.zeros((h, w), dtype=bool)
        if own_ignore is not None:
            if instance_ignore == "class":
                own.append((own_ignore, inst["category_id"]))
            else:
                ignore = ignore | own_ignore
        if mask.any():
            masks.append(mask)
            classes.append(inst["category_id"])
    out = semantic_map(masks, classes, h, w, dtype=dtype)
    for region, c in own:  # an instance's own ignore region takes its class only where no instance mask is
        out[region & (out == 0)] = c + 1
    out[ignore] = IGNORE_LABEL
    return out


def write_label_png(label, path):
    """
    Write an (H, W) uint8 label map as a PNG, atomically (:func:`wsis.core.io.atomic_write_png`: a reader never sees half a
    file).

    Raises:
        ValueError: if ``label`` is not a 2-d uint8 array. OSError: naming ``path`` if PNG encoding fails.
    """
    label = np.asarray(label)
    if label.ndim != 2 or label.dtype != np.uint8:
        raise ValueError(f"label must be an (H, W) uint8 map, got {label.shape} {label.dtype} for {path}")
    atomic_write_png(np.ascontiguousarray(label), path)


def write_semantic_pngs(records, folder):
    """Write ``<image_id>.png`` (:func:`semantic_from_record`, uint8) for each record of ``{image_id: record}``."""
    os.makedirs(folder, exist_ok=True)
    for image_id in sorted(records):
        write_label_png(semantic_from_record(records[image_id]), os.path.join(folder, f"{image_id}.png"))
