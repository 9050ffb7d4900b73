"""
Panoptic label folders (``tools/make_panoptic_labels.py``'s output, COCO's panoptic format: ``<image_id>.png`` with
id = R + 256 G + 65536 B and ``panoptic.json`` with the json's category ids) attached to training dicts, and one
image's label as the tensors the network trains on. Pure NumPy; no detectron2.
"""
import json
import os

import cv2
import numpy as np

from wsis.core.panoptic import VOID_ID, panoptic_rgb_to_id

__all__ = ["attach_panoptic_labels", "read_panoptic_ids", "panoptic_index_map", "MAX_SEGMENTS"]

#: Segments an index map holds (uint8, 255 = ignore, so that augmentations interpolate it as a label map).
MAX_SEGMENTS = 254


def attach_panoptic_labels(dataset_dicts, folder, dataset_id_to_contiguous, require_all=True):
    """
    Args:
        dataset_dicts (list[dict]): training images (their weak annotations stay as they are).
        folder (str): a panoptic label folder (its ``panoptic.json`` and PNGs).
        dataset_id_to_contiguous (Mapping[int, int]): the json's category id → contiguous class (the dataset's
            ``thing_dataset_id_to_contiguous_id`` over things and stuff).
        require_all (bool): an image without a label is an error naming it; False: such images are dropped.

    Returns:
        list[dict]: copies with ``pan_seg_file_name`` and ``segments_info`` (``id``, ``category_id`` contiguous,
        ``iscrowd``) added.
    """
    path = os.path.join(folder, "panoptic.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no panoptic.json; make the labels with tools/make_panoptic_labels.py")
    with open(path) as f:
        by_image = {a["image_id"]: a for a in json.load(f)["annotations"]}
    out = []
    for d in dataset_dicts:
        ann = by_image.get(d["image_id"])
        if ann is None:
            if require_all:
                raise ValueError(f"{path}: no panoptic label for image id {d['image_id']} ({d.get('file_name')})")
            continue
        info = []
        for s in ann["segments_info"]:
            if s["category_id"] not in dataset_id_to_contiguous:
                raise ValueError(f"{path}: image id {d['image_id']}, segment {s['id']}: category id "
                                 f"{s['category_id']} is not a category of the training set")
            info.append({"id": int(s["id"]), "category_id": int(dataset_id_to_contiguous[s["category_id"]]),
                         "iscrowd": int(s.get("iscrowd", 0))})
        out.append(dict(d, pan_seg_file_name=os.path.join(folder, ann["file_name"]), segments_info=info))
    return out


def read_panoptic_ids(file_name):
    """(H, W) int64 segment ids of a COCO panoptic PNG (id = R + 256 G + 65536 B)."""
    bgr = cv2.imread(file_name, cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read panoptic label {file_name}")
    return panoptic_rgb_to_id(bgr[:, :, ::-1])


def panoptic_index_map(ids, segments_info):
    """
    Args:
        ids (ndarray): (H, W) segment ids (0 void). segments_info (list[dict]): ``id``, ``category_id``, ``iscrowd``.

    Returns:
        (ndarray, ndarray, ndarray): (H, W) uint8 index of each pixel's segment in ``segments_info`` (255: void or
        an id no segment lists), (G,) int64 classes, (G,) bool crowd flags.
    """
    if len(segments_info) > MAX_SEGMENTS:
        raise ValueError(f"{len(segments_info)} segments; at most {MAX_SEGMENTS} are supported")
    index = np.full(ids.shape, 255, np.uint8)
    for k, s in enumerate(segments_info):
        if s["id"] == VOID_ID:
            raise ValueError("segment id 0 is void and cannot be a segment")
        index[ids == s["id"]] = k
    classes = np.array([s["category_id"] for s in segments_info], np.int64)
    crowd = np.array([bool(s.get("iscrowd", 0)) for s in segments_info], bool)
    return index, classes, crowd
