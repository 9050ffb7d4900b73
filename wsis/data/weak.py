"""Seeded, reproducible derivation of weakly-annotated datasets from fully-annotated ones (detectron2-free).

All functions take and return Detectron2 dataset dicts in the format of :mod:`wsis.data.coco_weak` and never
mutate their input. The same ``seed`` always selects the same images/instances, independent of the order of the
input list (selection is by sorted image/annotation id).
"""
import copy
import os

import numpy as np

from wsis.core.io import atomic_write_json

WEAK_MODES = ("box", "tag", "semi_images", "semi_instances")


def _strip_masks(ann):
    ann = dict(ann)
    ann.pop("segmentation", None)
    ann["mask_valid"] = False
    return ann


def _with_supervision(d, annotations):
    out = dict(d)
    out["annotations"] = annotations
    if not annotations:
        out["supervision"] = "tag" if d.get("supervision") == "tag" else "mask"
    else:
        out["supervision"] = "mask" if any(a.get("mask_valid") for a in annotations) else "box"
    return out


def to_box_supervision(dataset_dicts):
    """Drop every mask; boxes and classes stay. Each dict gets ``supervision="box"``."""
    return [_with_supervision(d, [_strip_masks(a) for a in d["annotations"]]) for d in dataset_dicts]


def to_tag_supervision(dataset_dicts):
    """Keep only image-level labels (``image_labels``); annotations become empty and ``supervision="tag"``."""
    out = []
    for d in dataset_dicts:
        d = dict(d)
        d["image_labels"] = sorted(
            set(d.get("image_labels", [])) | {a["category_id"] for a in d["annotations"] if not a.get("iscrowd", 0)}
        )
        d["annotations"] = []
        d["supervision"] = "tag"
        out.append(d)
    return out


def _select(keys, fraction, seed):
    """Deterministically select ``round(fraction * len(keys))`` of the (sortable) keys."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    keys = sorted(keys)
    n = int(round(fraction * len(keys)))
    order = np.random.RandomState(seed).permutation(len(keys))
    return {keys[i] for i in order[:n]}


def seeded_image_ids(dataset_dicts, fraction, seed=0):
    """The image ids of the seeded ``fraction`` of the images that keep full labels in the semi-supervised setting
    (the same images as :func:`keep_masks_on_fraction` with ``per="image"``), independent of the list's order."""
    return _select([d["image_id"] for d in dataset_dicts], fraction, seed)


def keep_masks_on_fraction(dataset_dicts, fraction, seed=0, per="image"):
    """
    The semi-supervised setting (WSPS §4.2): masks stay on a seeded fraction of the images (``per="image"``) or of
    the annotated instances (``per="instance"``); every other instance keeps only its box (``mask_valid=False``).
    """
    if per == "image":
        keep = seeded_image_ids(dataset_dicts, fraction, seed)
        return [
            _with_supervision(d, [copy.copy(a) if d["image_id"] in keep else _strip_masks(a) for a in d["annotations"]])
            for d in dataset_dicts
        ]
    if per == "instance":
        ids = [a["id"] for d in dataset_dicts for a in d["annotations"] if a.get("mask_valid")]
        keep = _select(ids, fraction, seed)
        return [
            _with_supervision(d, [copy.copy(a) if a["id"] in keep else _strip_masks(a) for a in d["annotations"]])
            for d in dataset_dicts
        ]
    raise ValueError(f"per must be 'image' or 'instance', got {per!r}")


def derive_weak_dataset(dataset_dicts, mode, fraction=0.0, seed=0):
    """Dispatch on ``mode`` in :data:`WEAK_MODES` ("box", "tag", "semi_images", "semi_instances")."""
    if mode == "box":
        return to_box_supervision(dataset_dicts)
    if mode == "tag":
        return to_tag_supervision(dataset_dicts)
    if mode in ("semi_images", "semi_instances"):
        return keep_masks_on_fraction(dataset_dicts, fraction, seed, per=mode.split("_")[1][:-1])
    raise ValueError(f"unknown weak mode {mode!r}; expected one of {WEAK_MODES}")


def export_coco_json(dataset_dicts, meta, out_file):
    """
    Write dataset dicts back as a COCO instances json (atomically), so a derived weak dataset is a file anyone
    can register. Image-level labels are kept in each image's ``"image_labels"`` (COCO category ids); box-only
    annotations have no ``"segmentation"``. ``meta`` is the metadata returned by ``load_coco_instances``.
    """
    contiguous_to_id = {v: k for k, v in meta["thing_dataset_id_to_contiguous_id"].items()}
    root = meta.get("image_root", "")
    images, annotations = [], []
    for d in sorted(dataset_dicts, key=lambda d: d["image_id"]):
        images.append(
            {
                "id": d["image_id"],
                "file_name": os.path.relpath(d["file_name"], root) if root else d["file_name"],
                "height": d["height"],
                "width": d["width"],
                "image_labels": [contiguous_to_id[c] for c in d.get("image_labels", [])],
            }
        )
        for a in d["annotations"]:
            ann = {
                "id": a["id"],
                "image_id": d["image_id"],
                "category_id": contiguous_to_id[a["category_id"]],
                "bbox": [float(v) for v in a["bbox"]],
                "area": float(a["bbox"][2] * a["bbox"][3]),
                "iscrowd": int(a.get("iscrowd", 0)),
            }
            if a.get("mask_valid") and "segmentation" in a:
                ann["segmentation"] = a["segmentation"]
            annotations.append(ann)
    categories = [{"id": contiguous_to_id[i], "name": n} for i, n in enumerate(meta["thing_classes"])]
    atomic_write_json({"images": images, "annotations": annotations, "categories": categories}, out_file)
