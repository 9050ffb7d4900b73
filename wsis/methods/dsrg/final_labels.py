"""
Write a trained DSRG model's final labels of a dataset as semantic pseudo-label PNGs (``<out>/<image_id>.png``,
the CAM stage's format) for the retraining stage and for other methods (WSPS's stuff, CCGR's segmentation branch).
Resumable: finished maps are kept; ``params.json`` records the checkpoint (and its sha256) and the settings, and a
folder made with others is refused.
"""
import logging
import os

import cv2
import numpy as np
import torch
from tqdm import tqdm

from detectron2.data import detection_utils as utils

from wsis.core.crf import DenseCRFParams
from wsis.core.semantic import write_label_png
from wsis.data.pseudo_store.format import source_hash_of_file
from wsis.pseudo.label_folder import claim_label_folder, missing_maps, skip_report_name, write_skip_report
from wsis.pseudo.network import semantic_probs
from wsis.pseudo.shards import shard_dicts

from .labels import final_label_map, grown_label_map

__all__ = ["make_final_labels"]
logger = logging.getLogger(__name__)


def make_final_labels(cfg, model, dataset_dicts, out_dir, weights, crf=True, progress=True, overwrite=False,
                      seeds_dir=None, num_shards=1, shard_index=0):
    """
    Args:
        cfg: the model's config. model: the trained ``DSRGSemanticSegmentor`` (any SemanticSegmentor works).
        dataset_dicts (list[dict]): images with ``image_labels`` (their tags).
        weights (str): the checkpoint file (its sha256 goes into params.json).
        crf (bool): DenseCRF (DeepLab's parameters) on each image's restricted probabilities.
        seeds_dir (str or None): write the *grown* labels instead: each image's seed map (``<seeds_dir>/<id>.png``)
            grown on those probabilities with ``MODEL.DSRG``'s variant and thresholds (255 stays unlabelled).
        num_shards, shard_index: label only this shard's images (:func:`wsis.pseudo.shards.shard_dicts`) into the
            shared folder; each shard keeps its own skip report.

    Returns:
        list[tuple]: ``(image_id, reason)`` of every skipped image.
    """
    params = {"method": "dsrg_final_labels", "weights": os.path.abspath(weights),
              "weights_sha256": source_hash_of_file(weights), "crf": DenseCRFParams().to_dict() if crf else None,
              "input": {"min_size_test": cfg.INPUT.MIN_SIZE_TEST, "max_size_test": cfg.INPUT.MAX_SIZE_TEST,
                        "format": cfg.INPUT.FORMAT}}
    if seeds_dir is not None:
        d = cfg.MODEL.DSRG
        params["grown_from"] = {"seeds_dir": os.path.abspath(seeds_dir), "growing": d.GROWING,
                                "fg_threshold": d.FG_THRESHOLD, "bg_threshold": d.BG_THRESHOLD}
    claim_label_folder(out_dir, params, overwrite, holds="labels of another checkpoint or settings")
    model.eval()
    skipped = []
    todo = missing_maps(out_dir, shard_dicts(dataset_dicts, num_shards, shard_index))
    for d in tqdm(todo, desc="DSRG final labels", unit="img", disable=not progress):
        try:
            image = utils.read_image(d["file_name"], format=cfg.INPUT.FORMAT)
            if image.shape[:2] != (d["height"], d["width"]):
                raise ValueError(f"the image is {image.shape[1]}x{image.shape[0]}, its annotation says "
                                 f"{d['width']}x{d['height']}")
            seeds = None
            if seeds_dir is not None:
                seeds = cv2.imread(os.path.join(seeds_dir, f"{d['image_id']}.png"), cv2.IMREAD_UNCHANGED)
                if seeds is None or seeds.shape != image.shape[:2]:
                    raise ValueError(f"no seed map of its size in {seeds_dir}")
        except (OSError, ValueError) as e:
            skipped.append((d["image_id"], f"{d.get('file_name')}: {e}"))
            logger.warning(f"skipped image id {d['image_id']}: {skipped[-1][1]}")
            continue
        probs = semantic_probs(model, cfg, image)
        rgb = image[:, :, ::-1] if cfg.INPUT.FORMAT == "BGR" else image
        rgb = np.ascontiguousarray(rgb) if crf else None
        if seeds is None:
            label = final_label_map(probs, d.get("image_labels", []), rgb)
        else:
            m = cfg.MODEL.DSRG
            label = grown_label_map(probs, seeds, d.get("image_labels", []), rgb, fg_threshold=m.FG_THRESHOLD,
                                    bg_threshold=m.BG_THRESHOLD, variant=m.GROWING)
        write_label_png(label, os.path.join(out_dir, f"{d['image_id']}.png"))
    write_skip_report(out_dir, skipped, skip_report_name(num_shards, shard_index))
    return sorted(skipped)
