"""
Semantic pseudo labels from a cue store: every image's cues, upsampled to the image, thresholded (IRNet §4.2's
confident areas with ignore between them, or WSPS §3.3's 50 %-of-max with smaller-area precedence) and written as
``<out>/<image_id>.png`` (uint8: 0 background, class + 1, 255 ignore), with their quality against true masks.
"""
import logging
import multiprocessing as mp
import os
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch
from tqdm import tqdm

from wsis.data.semantic_labels import semantic_ground_truth, write_label_png
from wsis.evaluation.localization import ConfidentAreaAccumulator
from wsis.pseudo.label_folder import claim_label_folder, missing_maps, skip_report_name, write_skip_report
from wsis.pseudo.shards import shard_dicts

from .labels import IRNET_LABEL_CRF, irnet_confident_labels, wsps_labels
from .localization import upsample_cams

__all__ = ["LabelSettings", "label_image", "make_semantic_labels", "label_quality"]
logger = logging.getLogger(__name__)
LABEL_METHODS = ("irnet", "wsps")


@dataclass(frozen=True)
class LabelSettings:
    """How cues become labels (``WSIS.CAM``): method "irnet" (fg/bg thresholds, CRF) or "wsps" (threshold, rest)."""

    method: str = "irnet"
    fg_threshold: float = 0.30
    bg_threshold: float = 0.05
    crf: bool = True
    wsps_threshold: float = 0.5
    rest: str = "background"

    def __post_init__(self):
        if self.method not in LABEL_METHODS:
            raise ValueError(f"WSIS.CAM.LABELS must be one of {LABEL_METHODS}, got {self.method!r}")

    @classmethod
    def from_config(cls, cfg):
        c = cfg.WSIS.CAM
        return cls(c.LABELS, float(c.FG_THRESHOLD), float(c.BG_THRESHOLD), bool(c.CRF), float(c.WSPS_THRESHOLD),
                   c.REST)

    def to_dict(self):
        return asdict(self)

    def label(self, image, classes, cams, stride, image_id=None):
        """:func:`label_image` with these settings (the rule interface of :func:`make_semantic_labels`)."""
        return label_image(image, classes, cams, stride, self)


def label_image(image, classes, cams, stride, settings):
    """
    Args:
        image (ndarray): (H, W, 3) uint8. classes (ndarray): (M,) contiguous ids. cams (ndarray): (M, h, w) cues at
            ``stride``. settings (LabelSettings).

    Returns:
        ndarray[uint8]: (H, W) label map.
    """
    h, w = image.shape[:2]
    full = upsample_cams(torch.as_tensor(np.asarray(cams, dtype=np.float32)), h, w, stride).numpy()
    if settings.method == "irnet":
        return irnet_confident_labels(image, full, classes, settings.fg_threshold, settings.bg_threshold,
                                      crf=IRNET_LABEL_CRF if settings.crf else None)
    return wsps_labels(full, classes, settings.wsps_threshold, settings.rest)


_job = None


def _init(job):
    global _job
    _job = job
    torch.set_num_threads(1)


def _one(item):
    store, settings, out_dir = _job
    d = item
    try:
        image = cv2.imread(d["file_name"], cv2.IMREAD_COLOR)
        if image is None:
            raise OSError("cannot read the image")
        if image.shape[:2] != (d["height"], d["width"]):
            raise ValueError(f"the image is {image.shape[1]}x{image.shape[0]}, its annotation says "
                             f"{d['width']}x{d['height']}")
        classes, cams = store[d["image_id"]]
        label = settings.label(image[:, :, ::-1].copy(), classes, cams, store.entries[d["image_id"]]["stride"],
                               d["image_id"])
        write_label_png(label, os.path.join(out_dir, f"{d['image_id']}.png"))
        return d["image_id"], None
    except Exception as e:  # a bad image is reported and counted; the others go on
        return d["image_id"], f"{d.get('file_name')}: {type(e).__name__}: {e}"


def make_semantic_labels(store, dataset_dicts, out_dir, settings=LabelSettings(), workers=1, progress=True,
                         overwrite=False, num_shards=1, shard_index=0):
    """
    Write the label map of every image of ``dataset_dicts`` that has cues in ``store`` into ``out_dir``.

    Resumable: finished maps are kept (each written atomically), ``<out>/params.json`` records the cue store's
    provenance and the settings, and a folder made with other ones is refused (``overwrite`` clears it).

    Args:
        store (wsis.data.cue_store.CueStore): the cues.
        settings: the rule, any object with ``label(image, classes, cams, stride, image_id)`` → (H, W) uint8 and
            ``to_dict()`` (:class:`LabelSettings`; DSRG's seeds, :class:`wsis.methods.dsrg.seeds.SeedSettings`).
        num_shards, shard_index: make only this shard's images (:func:`wsis.pseudo.shards.shard_dicts`) into the
            shared folder, e.g. one task of an array job; each shard keeps its own skip report.

    Returns:
        list[tuple]: ``(image_id, reason)`` of every skipped image (no cues, unreadable image).
    """
    dataset_dicts = shard_dicts(dataset_dicts, num_shards, shard_index)
    params = {"cues": store.provenance, "cue_dir": os.path.abspath(store.out_dir), "labels": settings.to_dict()}
    claim_label_folder(out_dir, params, overwrite, holds="labels made with other cues or settings")
    skipped = [(d["image_id"], f"{d.get('file_name')}: no cues in {store.out_dir}") for d in dataset_dicts
               if d["image_id"] not in store]
    todo = [d for d in missing_maps(out_dir, dataset_dicts) if d["image_id"] in store]
    job = (store, settings, out_dir)
    bar = tqdm(total=len(dataset_dicts), initial=len(dataset_dicts) - len(todo), desc="semantic labels", unit="img",
               disable=not progress)
    if workers <= 1:
        _init(job)
        results = map(_one, todo)
        pool = None
    else:
        pool = mp.Pool(workers, initializer=_init, initargs=(job,))
        results = pool.imap_unordered(_one, todo, chunksize=max(1, len(todo) // (workers * 20)))
    try:
        for image_id, error in results:
            if error is not None:
                skipped.append((image_id, error))
                logger.warning(f"skipped image id {image_id}: {error}")
            bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    write_skip_report(out_dir, skipped, skip_report_name(num_shards, shard_index))
    return sorted(skipped)


def label_quality(label_dir, gt_dicts, class_names):
    """
    Pixel quality of the label maps in ``label_dir`` against the true maps of ``gt_dicts`` (masks rasterised by
    :func:`wsis.data.semantic_labels.semantic_ground_truth`): :class:`ConfidentAreaAccumulator`'s precision,
    recall, fraction ignored and mIoU over background + classes, and the foreground / background precision and
    recall of IRNet's confident areas; images without a map are left out (counted).
    """
    acc = ConfidentAreaAccumulator(len(class_names) + 1, class_names=["background"] + list(class_names))
    n = 0
    for d in gt_dicts:
        path = os.path.join(label_dir, f"{d['image_id']}.png")
        label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if label is None:
            continue
        acc.add(label, semantic_ground_truth(d))
        n += 1
    return dict(acc.summarize(), num_images=n, num_missing=len(gt_dicts) - n)
