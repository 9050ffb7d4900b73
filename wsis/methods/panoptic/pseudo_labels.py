"""
Panoptic pseudo labels of WSPS's iteration 0 (§3.2, §3.3): things from their boxes, stuff from image tags.

Things: the instance masks a box generator made (wsis's vote or WSPS's fusion, :mod:`wsis.methods.wsps`), each its
own segment; its ignore pixels stay ignored. Stuff: the stuff classes' localisation cues (Grad-CAM in the paper)
thresholded at 50 % of each map's max, the smaller area winning overlaps, uncovered pixels ignored
(:func:`wsis.methods.cam.labels.wsps_labels` with ``rest="ignore"``); a stuff class becomes one segment, and only
where no thing claims the pixel (a box is stronger evidence than a tag).
"""
import json

import cv2
import numpy as np

from wsis.core.masks import to_bool_mask
from wsis.core.panoptic import VOID_ID
from wsis.data.weak import to_box_supervision
from wsis.methods.cam.labels import wsps_labels

__all__ = ["assemble_panoptic", "stuff_label_map", "panoptic_pseudo_label", "panoptic_ground_truth",
           "panoptic_categories"]


def assemble_panoptic(thing_masks, thing_classes, thing_ignore, stuff_labels):
    """
    Args:
        thing_masks (ndarray): (N, H, W) bool disjoint instance masks (empty ones are left out).
        thing_classes (sequence[int]): (N,) category of each.
        thing_ignore (ndarray or None): (H, W) bool pixels the box labels ignore (doubt, crowd, overlaps).
        stuff_labels (ndarray): (H, W) int stuff label map: category + 1, 0 nothing, 255 ignore
            (:func:`wsis.methods.cam.labels.wsps_labels` of the stuff classes' cues; the classes as categories).

    Returns:
        (ids, segments): (H, W) int32 segment ids (0 void) and ``[{"id", "category_id", "isthing", "area"}]``.
    """
    thing_masks = np.asarray(thing_masks, dtype=bool)
    stuff_labels = np.asarray(stuff_labels)
    if thing_masks.ndim != 3 or thing_masks.shape[1:] != stuff_labels.shape:
        raise ValueError(f"thing masks (N, H, W) {thing_masks.shape} and stuff labels (H, W) {stuff_labels.shape} "
                         "do not agree")
    if len(thing_classes) != len(thing_masks):
        raise ValueError(f"{len(thing_masks)} thing masks for {len(thing_classes)} classes")
    if (thing_masks.sum(0) > 1).any():
        raise ValueError("thing masks overlap; resolve overlaps before assembling (e.g. the vote's smallest rule)")
    ids = np.zeros(stuff_labels.shape, dtype=np.int32)
    segments = []
    for mask, c in zip(thing_masks, thing_classes):
        if mask.any():
            segments.append({"id": len(segments) + 1, "category_id": int(c), "isthing": True,
                             "area": int(mask.sum())})
            ids[mask] = segments[-1]["id"]
    free = ids == VOID_ID
    if thing_ignore is not None:
        free &= ~np.asarray(thing_ignore, dtype=bool)
    for label in np.unique(stuff_labels[free]):
        if label == 0 or label == 255:
            continue
        region = free & (stuff_labels == label)
        segments.append({"id": len(segments) + 1, "category_id": int(label) - 1, "isthing": False,
                         "area": int(region.sum())})
        ids[region] = segments[-1]["id"]
    return ids, segments


def stuff_label_map(classes, cams, isthing, shape, threshold=0.5):
    """
    Args:
        classes (sequence[int]): (M,) the classes of an image's cues. cams (ndarray): (M, h, w) its cue maps.
        isthing (Mapping[int, bool]): class → thing or stuff.
        shape (tuple): (H, W) to resize the maps to (bilinear).
        threshold (float): the fraction of each map's max (WSPS: 0.5).

    Returns:
        ndarray[uint8]: (H, W) stuff label map of :func:`assemble_panoptic` (class + 1, 255 uncovered).
    """
    h, w = shape
    keep = [i for i, c in enumerate(classes) if not isthing[int(c)]]
    maps = [np.maximum(cv2.resize(np.asarray(cams[i], np.float32), (w, h), interpolation=cv2.INTER_LINEAR), 0)
            for i in keep]
    maps = np.stack(maps) if maps else np.zeros((0, h, w), np.float32)
    return wsps_labels(maps, [int(classes[i]) for i in keep], threshold=threshold, rest="ignore")


def panoptic_pseudo_label(dataset_dict, generator, cues, isthing, threshold=0.5):
    """
    One image's iteration-0 panoptic pseudo label.

    Args:
        dataset_dict (dict): the image with its annotations (boxes; things and stuff segments alike).
        generator: a box pseudo-mask generator (``WSPSGenerator``), run on the thing annotations.
        cues (tuple or None): (classes, cams) of the image (a cue store's entry); None: no stuff.
        isthing (Mapping[int, bool]): class → thing or stuff.
        threshold (float): see :func:`stuff_label_map`.

    Returns:
        (ids, segments): :func:`assemble_panoptic`'s.
    """
    h, w = dataset_dict["height"], dataset_dict["width"]
    things = dict(dataset_dict, annotations=[a for a in dataset_dict["annotations"] if isthing[a["category_id"]]])
    rec = generator(to_box_supervision([things])[0])
    valid = [i for i in rec["instances"] if i["valid"]]
    masks = np.stack([to_bool_mask(i["segmentation"], h, w) for i in valid]) if valid else np.zeros((0, h, w), bool)
    ignore = to_bool_mask(rec["ignore"], h, w) if rec.get("ignore") else None
    stuff = stuff_label_map(*cues, isthing, (h, w), threshold) if cues is not None else np.full((h, w), 255, np.uint8)
    return assemble_panoptic(masks, [i["category_id"] for i in valid], ignore, stuff)


def panoptic_categories(json_file, meta):
    """
    The categories of a panoptic set's COCO json in contiguous order, and which are things.

    Args:
        json_file (str): the json (its ``categories`` need ``isthing``).
        meta (dict): :func:`wsis.data.coco_weak.load_coco_instances`'s metadata of it (the contiguous ids).

    Returns:
        (list[dict], dict[int, bool]): the json's category entries by contiguous id, and contiguous id → isthing.
    """
    with open(json_file) as f:
        cats = json.load(f)["categories"]
    if any("isthing" not in c for c in cats):
        raise ValueError(f"{json_file}: every category needs 'isthing' (a panoptic set's categories)")
    by_id = {c["id"]: c for c in cats}
    to_contiguous = meta["thing_dataset_id_to_contiguous_id"]
    categories = [by_id[i] for i in sorted(to_contiguous, key=to_contiguous.get)]
    return categories, {k: bool(c["isthing"]) for k, c in enumerate(categories)}


def panoptic_ground_truth(dataset_dict):
    """The true (ids, segments) of an image whose annotations are its panoptic segments with masks (one each, as
    ``tools/convert_coco_panoptic.py`` writes them); ``iscrowd`` kept for PQ."""
    h, w = dataset_dict["height"], dataset_dict["width"]
    ids = np.zeros((h, w), np.int32)
    segments = []
    for k, a in enumerate(dataset_dict["annotations"], 1):
        ids[to_bool_mask(a["segmentation"], h, w)] = k
        segments.append({"id": k, "category_id": a["category_id"], "iscrowd": a.get("iscrowd", 0)})
    return ids, segments
