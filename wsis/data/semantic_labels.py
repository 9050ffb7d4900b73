"""
Semantic label maps as files detectron2 reads: a dataset dict's ``sem_seg_file_name`` (uint8 PNG: 0 background,
contiguous class ``c`` → ``c + 1``, 255 ignore) becomes ``"sem_seg"`` in ``DatasetMapper``. Pseudo labels made from
cues are attached to the training dicts (:func:`attach_semantic_labels`); true maps for evaluation are rasterised
from instance masks (:func:`write_semantic_ground_truth`; crowd regions → ignore) or from COCO panoptic PNGs
(:func:`semantic_from_panoptic`). Detectron2-free.
"""
import logging
import os

import numpy as np
from tqdm import tqdm

from wsis.core.masks import to_bool_mask
from wsis.core.semantic import IGNORE_LABEL, semantic_map, write_label_png

__all__ = ["SemanticLabelError", "attach_semantic_labels", "semantic_ground_truth", "write_semantic_ground_truth",
           "semantic_from_panoptic", "write_label_png", "semantic_classes"]
logger = logging.getLogger(__name__)


class SemanticLabelError(ValueError):
    """A label map is missing, unreadable or does not fit its image; the message names the file and image id."""


def semantic_classes(thing_classes):
    """The class names of a label map (``stuff_classes`` for ``SemSegEvaluator``): background, then the classes."""
    return ["background"] + list(thing_classes)


def attach_semantic_labels(dataset_dicts, folder, require_all=True):
    """
    Copies of ``dataset_dicts`` whose ``sem_seg_file_name`` is ``<folder>/<image_id>.png``.

    Args:
        require_all (bool): raise :class:`SemanticLabelError` (naming the image) when a map is missing; else the
            image is left out, with a warning that counts them.
    """
    out, missing = [], []
    for d in dataset_dicts:
        path = os.path.join(folder, f"{d['image_id']}.png")
        if not os.path.isfile(path):
            if require_all:
                raise SemanticLabelError(f"{path}: no label map for image id {d['image_id']} ({d.get('file_name')})")
            missing.append(d["image_id"])
            continue
        out.append(dict(d, sem_seg_file_name=path))
    if missing:
        logger.warning(f"{folder}: {len(missing)} of {len(dataset_dicts)} images have no label map and are left out "
                       f"(e.g. image id {missing[0]})")
    return out


def semantic_ground_truth(dataset_dict):
    """The (H, W) uint8 true label map of a dict with instance masks: smallest instance wins, crowd → 255."""
    h, w = dataset_dict["height"], dataset_dict["width"]
    masks, classes, crowd = [], [], np.zeros((h, w), dtype=bool)
    for a in dataset_dict["annotations"]:
        if "segmentation" not in a:
            raise SemanticLabelError(f"{dataset_dict.get('file_name')}: annotation id {a.get('id')} of image id "
                                     f"{dataset_dict['image_id']} has no mask; a true label map needs masks")
        mask = to_bool_mask(a["segmentation"], h, w)
        if a.get("iscrowd", 0):
            crowd |= mask
        else:
            masks.append(mask)
            classes.append(a["category_id"])
    if classes and max(classes) + 1 >= IGNORE_LABEL:
        raise SemanticLabelError(f"image id {dataset_dict['image_id']}: class {max(classes)} does not fit uint8")
    return semantic_map(masks, classes, h, w, crowd if crowd.any() else None, dtype=np.uint8)


def write_semantic_ground_truth(dataset_dicts, folder, progress=True):
    """
    Write ``<folder>/<image_id>.png`` (:func:`semantic_ground_truth`) for every dict that has none yet (a killed run
    resumes; each file is written atomically). Returns :func:`attach_semantic_labels` of the dicts.
    """
    todo = [d for d in dataset_dicts if not os.path.isfile(os.path.join(folder, f"{d['image_id']}.png"))]
    for d in tqdm(todo, desc="true label maps", unit="img", disable=not progress or not todo):
        write_label_png(semantic_ground_truth(d), os.path.join(folder, f"{d['image_id']}.png"))
    return attach_semantic_labels(dataset_dicts, folder)


def semantic_from_panoptic(ids, segments_info, category_to_label):
    """
    The label map of a COCO panoptic segmentation (things and stuff).

    Args:
        ids (ndarray): (H, W) int segment ids (:func:`wsis.core.panoptic.panoptic_rgb_to_id` of the PNG).
        segments_info (list[dict]): ``{"id", "category_id", "iscrowd"}`` per segment.
        category_to_label (dict): category id → label (e.g. contiguous id over things + stuff).

    Returns:
        ndarray[uint8]: (H, W); unlabelled pixels (id 0 or unknown) and crowd segments → 255.
    """
    out = np.full(ids.shape, IGNORE_LABEL, dtype=np.uint8)
    for s in segments_info:
        if s.get("iscrowd", 0):
            continue
        label = category_to_label[s["category_id"]]
        if not 0 <= label < IGNORE_LABEL:
            raise SemanticLabelError(f"segment {s['id']}: label {label} does not fit uint8")
        out[ids == s["id"]] = label
    return out
