"""
What ``tools/make_cues.py`` writes next to a cue store: ``metrics.json`` with the cues' localisation quality against
true masks (the standard "CAM mIoU": the best single background threshold, :class:`CAMThresholdSweep`) next to a
centre-Gaussian prior's, the store's size per image, and ``skipped.json``.
"""
import logging
import os

import numpy as np
import torch

from wsis import __version__
from wsis.core.io import atomic_write_json
from wsis.data.cue_store import CueStore
from wsis.data.semantic_labels import semantic_ground_truth
from wsis.evaluation.localization import CAMThresholdSweep

from .localization import center_gaussian_prior, upsample_cams

__all__ = ["cue_localization", "write_cue_outputs"]
logger = logging.getLogger(__name__)


def cue_localization(store, gt_dicts, num_classes, thresholds=None):
    """
    Args:
        store (CueStore): cues. gt_dicts (list[dict]): the images with their true instance masks (the classes of
            each image's cues are scored; an image without cues is left out). num_classes (int): object classes.

    Returns:
        dict: ``cues/*`` and ``prior/*`` of :meth:`CAMThresholdSweep.summarize` (best_miou, best_threshold,
        miou_per_threshold) and ``num_images``; the prior is a centred Gaussian per cue class, so it shares the
        cues' class information and differs only in where it puts the mass.
    """
    kw = {} if thresholds is None else {"thresholds": thresholds}
    sweeps = {"cues": CAMThresholdSweep(num_classes + 1, **kw), "prior": CAMThresholdSweep(num_classes + 1, **kw)}
    n = 0
    for d in gt_dicts:
        if d["image_id"] not in store:
            continue
        classes, cams = store[d["image_id"]]
        h, w = d["height"], d["width"]
        gt = semantic_ground_truth(d)
        full = upsample_cams(torch.as_tensor(cams), h, w, store.entries[d["image_id"]]["stride"]).numpy()
        prior = center_gaussian_prior(h, w, len(classes)).numpy()
        sweeps["cues"].add(full, classes, gt)
        sweeps["prior"].add(prior, classes, gt)
        n += 1
    out = {"num_images": n}
    for name, sweep in sweeps.items():
        res = sweep.summarize()
        out.update({f"{name}/best_miou": res["best_miou"], f"{name}/best_threshold": res["best_threshold"],
                    f"{name}/miou_per_threshold": res["miou_per_threshold"]})
    return out


def _bytes_per_image(store):
    sizes = [os.path.getsize(os.path.join(store.out_dir, e["file"])) for e in store.entries.values()]
    return float(np.mean(sizes)) if sizes else 0.0


def write_cue_outputs(out_dir, store_dir, skipped, dicts, gt_dicts, num_classes, info=None):
    """
    Write ``metrics.json`` (and ``skipped.json`` when images were skipped) for the cue store ``store_dir``; the
    localisation figures only when ``gt_dicts`` have masks.

    Returns:
        dict: the contents of ``metrics.json``.
    """
    store = CueStore(store_dir)
    ids = {d["image_id"] for d in dicts}
    metrics = {"num_images": len(store), "num_skipped": sum(i not in store for i in ids),
               "bytes_per_image": _bytes_per_image(store), "wsis_version": __version__}
    metrics.update(info or {})
    skipped_file = os.path.join(out_dir, "skipped.json")
    if skipped:
        atomic_write_json([{"image_id": i, "reason": r} for i, r in skipped], skipped_file, indent=1)
    gt = [d for d in gt_dicts if d["image_id"] in ids]
    if any("segmentation" in a for d in gt for a in d["annotations"]):  # a json with masks: every image scored
        loc = cue_localization(store, gt, num_classes)
        metrics.update({k: v for k, v in loc.items() if k != "num_images"}, num_scored_images=loc["num_images"])
        logger.info(f"cue mIoU (best threshold) {loc['cues/best_miou']:.3f} at {loc['cues/best_threshold']:.2f}; "
                    f"centre prior {loc['prior/best_miou']:.3f}")
    atomic_write_json(metrics, os.path.join(out_dir, "metrics.json"), indent=2)
    if metrics["num_skipped"]:
        logger.warning(f"{metrics['num_skipped']} image(s) skipped, listed in {skipped_file}")
    return metrics
