"""Semantic pseudo-label maps derived from a pseudo-mask store record (WSPS Fig. 2b), and their PNG files."""
import os

import cv2
import numpy as np

from wsis.data.pseudo_store import decode_mask

from .fusion import IGNORE


def semantic_from_record(record):
    """
    (H, W) uint8 semantic labels of a store record: 0 background, ``category_id + 1`` where an instance's mask or
    its per-instance ignore (a same-class overlap, whose class is certain) lies, 255 where the image is ignored.
    """
    sem = np.zeros((record["height"], record["width"]), dtype=np.uint8)
    for inst in record["instances"]:
        if inst["category_id"] + 1 >= IGNORE:
            raise ValueError(f"category {inst['category_id']} does not fit an 8-bit label map")
        if inst.get("valid", True):
            sem[decode_mask(inst["segmentation"])] = inst["category_id"] + 1
        if inst.get("ignore"):
            sem[decode_mask(inst["ignore"])] = inst["category_id"] + 1
    if record.get("ignore"):
        sem[decode_mask(record["ignore"])] = IGNORE
    return sem


def write_semantic_pngs(records, folder):
    """Write ``<image_id>.png`` (:func:`semantic_from_record`) for each record of ``{image_id: record}``."""
    os.makedirs(folder, exist_ok=True)
    for image_id in sorted(records):
        path = os.path.join(folder, f"{image_id}.png")
        if not cv2.imwrite(path, semantic_from_record(records[image_id])):
            raise OSError(f"cannot write {path}")
