"""
The MIL branch's bags on disk: detectron2's precomputed-proposal pickle (``ids``, ``boxes``, ``objectness_logits``,
``bbox_mode``; readable by ``DATASETS.PROPOSAL_FILES_TRAIN``) with two more per-image lists, ``bag_index`` (the bag
of each proposal) and ``bag_labels`` (the class of each bag). A proposal of two bags is listed twice.
"""
import pickle

import numpy as np

from wsis.core.io import atomic_open

__all__ = ["write_bag_file", "read_bag_file", "attach_bags", "XYXY_ABS"]

#: detectron2's BoxMode.XYXY_ABS (an int in the pickle, as detectron2 writes it).
XYXY_ABS = 0


def write_bag_file(path, bags_by_image):
    """
    Args:
        path (str): the pickle to write (atomically).
        bags_by_image (dict[int, dict]): image id → :func:`wsis.methods.ccgr.peaks.image_bags`'s dict.
    """
    ids = sorted(bags_by_image)
    data = {"ids": ids, "bbox_mode": XYXY_ABS, "boxes": [], "objectness_logits": [], "bag_index": [],
            "bag_labels": []}
    for i in ids:
        b = bags_by_image[i]
        n = len(b["boxes"])
        if not len(b["objectness"]) == len(b["bag_index"]) == n:
            raise ValueError(f"image id {i}: {n} boxes, {len(b['objectness'])} scores, {len(b['bag_index'])} bag "
                             "indices")
        data["boxes"].append(np.asarray(b["boxes"], np.float32).reshape(n, 4))
        data["objectness_logits"].append(np.asarray(b["objectness"], np.float32).reshape(n))
        data["bag_index"].append(np.asarray(b["bag_index"], np.int64).reshape(n))
        data["bag_labels"].append(np.asarray(b["bag_labels"], np.int64).reshape(-1))
    with atomic_open(path, "wb") as f:
        pickle.dump(data, f)


def read_bag_file(path):
    """image id → {``boxes`` (N, 4) XYXY, ``objectness`` (N,), ``bag_index`` (N,), ``bag_labels`` (B,)}."""
    with open(path, "rb") as f:
        data = pickle.load(f)
    missing = {"ids", "boxes", "objectness_logits", "bag_index", "bag_labels"} - set(data)
    if missing:
        raise ValueError(f"{path}: not a bag file (no {sorted(missing)}); make it with tools/make_ccgr_bags.py")
    if data.get("bbox_mode", XYXY_ABS) != XYXY_ABS:
        raise ValueError(f"{path}: boxes must be XYXY_ABS")
    out = {}
    for k, i in enumerate(data["ids"]):
        bag_index, labels = np.asarray(data["bag_index"][k]), np.asarray(data["bag_labels"][k])
        if len(bag_index) and (bag_index.min() < 0 or bag_index.max() >= len(labels)):
            raise ValueError(f"{path}: image id {i} has bag indices outside its {len(labels)} bags")
        if len(labels) and (np.bincount(bag_index, minlength=len(labels)) == 0).any():
            raise ValueError(f"{path}: image id {i} has a bag without proposals")
        out[i] = {"boxes": np.asarray(data["boxes"][k], np.float32).reshape(-1, 4),
                  "objectness": np.asarray(data["objectness_logits"][k], np.float32),
                  "bag_index": bag_index.astype(np.int64), "bag_labels": labels.astype(np.int64)}
    return out


def attach_bags(dataset_dicts, bags, require_all=False):
    """Copies of the dicts with ``bags`` (their entry of :func:`read_bag_file`); images without one get none, or
    with ``require_all`` an error that names the image."""
    out = []
    for d in dataset_dicts:
        b = bags.get(d["image_id"])
        if b is None and require_all:
            raise ValueError(f"image id {d['image_id']} ({d.get('file_name')}) has no bags")
        out.append(dict(d, bags=b) if b is not None else dict(d))
    return out
