"""
The MIL branch's bags on disk: detectron2's precomputed-proposal pickle (``ids``, ``boxes``, ``objectness_logits``,
``bbox_mode``; readable by ``DATASETS.PROPOSAL_FILES_TRAIN``) with three more per-image lists, ``bag_index`` (the bag
of each proposal), ``bag_labels`` (the class of each bag) and ``bag_peaks`` (the peak x, y of each bag; NaN for bags
made from boxes, :mod:`.box_bags`). A proposal of two bags is listed twice.
"""
import pickle

import numpy as np

from wsis.core.io import atomic_open

__all__ = ["write_bag_file", "read_bag_file", "read_bag_files", "attach_bags", "write_proposal_file",
           "read_proposal_file", "XYXY_ABS"]

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
            "bag_labels": [], "bag_peaks": []}
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
        peaks = b.get("peaks")
        data["bag_peaks"].append(np.full((len(data["bag_labels"][-1]), 2), np.nan, np.float32) if peaks is None
                                 else np.asarray(peaks, np.float32).reshape(-1, 2))
    with atomic_open(path, "wb") as f:
        pickle.dump(data, f)


def read_bag_file(path):
    """image id → {``boxes`` (N, 4) XYXY, ``objectness`` (N,), ``bag_index`` (N,), ``bag_labels`` (B,), ``peaks``
    (B, 2), NaN where a bag has none}."""
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
        peaks = (np.asarray(data["bag_peaks"][k], np.float32).reshape(-1, 2) if "bag_peaks" in data
                 else np.full((len(labels), 2), np.nan, np.float32))
        if len(peaks) != len(labels):
            raise ValueError(f"{path}: image id {i} has {len(peaks)} peaks for {len(labels)} bags")
        out[i] = {"boxes": np.asarray(data["boxes"][k], np.float32).reshape(-1, 4),
                  "objectness": np.asarray(data["objectness_logits"][k], np.float32),
                  "bag_index": bag_index.astype(np.int64), "bag_labels": labels.astype(np.int64), "peaks": peaks}
    return out


def read_bag_files(paths):
    """image id → bags of every file of ``paths`` (``WSIS.CCGR.BAGS``); an id in two files is an error."""
    bags = {}
    for path in paths:
        part = read_bag_file(path)
        twice = set(part) & set(bags)
        if twice:
            raise ValueError(f"{path}: image id {min(twice)} also has bags in an earlier WSIS.CCGR.BAGS file")
        bags.update(part)
    return bags


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


def write_proposal_file(path, proposals_by_image):
    """Write image id → ((P, 4) XYXY boxes, (P,) scores) as a detectron2 proposal pickle (atomically)."""
    ids = sorted(proposals_by_image)
    data = {"ids": ids, "bbox_mode": XYXY_ABS,
            "boxes": [np.asarray(proposals_by_image[i][0], np.float32).reshape(-1, 4) for i in ids],
            "objectness_logits": [np.asarray(proposals_by_image[i][1], np.float32).reshape(-1) for i in ids]}
    with atomic_open(path, "wb") as f:
        pickle.dump(data, f)


def read_proposal_file(path):
    """image id → ((P, 4) XYXY boxes, (P,) scores) of a detectron2 proposal pickle (``ids`` or ``indexes``,
    ``boxes``, ``objectness_logits`` or ``scores``; XYXY_ABS boxes)."""
    with open(path, "rb") as f:
        data = pickle.load(f)
    data = {{"indexes": "ids", "scores": "objectness_logits"}.get(k, k): v for k, v in data.items()}
    missing = {"ids", "boxes", "objectness_logits"} - set(data)
    if missing:
        raise ValueError(f"{path}: not a detectron2 proposal file (no {sorted(missing)})")
    if data.get("bbox_mode", XYXY_ABS) != XYXY_ABS:
        raise ValueError(f"{path}: proposal boxes must be XYXY_ABS (bbox_mode 0)")
    out = {}
    for i, b, s in zip(data["ids"], data["boxes"], data["objectness_logits"]):
        boxes, scores = np.asarray(b, np.float32).reshape(-1, 4), np.asarray(s, np.float32).reshape(-1)
        if len(boxes) != len(scores):
            raise ValueError(f"{path}: image id {i} has {len(boxes)} boxes for {len(scores)} scores")
        out[i] = (boxes, scores)
    return out
