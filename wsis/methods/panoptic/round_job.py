"""
The job of ``tools/wsps_panoptic_round.py`` (WSPS §3.4): a trained ``WSPSPanopticNetwork`` labels its own training
images, :func:`~.refine.refine_panoptic_label` applies the weak annotations' rules, and the result is the next
round's label folder (the format of ``tools/make_panoptic_labels.py``, so training reads it the same way).
Resumable like that job: an image is done when its PNG exists; ``params.json`` refuses other weights.
"""
import logging

import torch
from tqdm import tqdm

from wsis.core.boxes import annotation_box
from wsis.pseudo.label_folder import claim_label_folder, missing_maps
from wsis.pseudo.shards import shard_dicts

from .label_job import write_panoptic_json, write_panoptic_label
from .mapper import PanopticLabelMapper
from .refine import refine_panoptic_label

__all__ = ["make_next_round_labels"]

logger = logging.getLogger(__name__)


def make_next_round_labels(cfg, model, dataset_dicts, isthing, categories, out_dir, params, progress=True,
                           overwrite=False, num_shards=1, shard_index=0, write_json=True):
    """
    Args:
        cfg: the model's config (its test-time input sizes). model: a ``WSPSPanopticNetwork`` with its weights.
        dataset_dicts (list[dict]): the training images with their weak annotations: thing boxes (non-crowd
            annotations of thing classes) and tags (``image_labels`` and the classes of all annotations).
        isthing (Mapping[int, bool]): contiguous class → thing. categories (list[dict]): the json's categories in
            contiguous order (``panoptic.json``'s ids).
        out_dir (str): the new label folder. params (dict): what made it (weights, config), kept in params.json.
        num_shards, shard_index: only this shard's images (as :func:`~.label_job.make_panoptic_labels`).
        write_json (bool): write ``panoptic.json`` at the end (processes under ``launch`` leave it to the main one).

    Returns:
        int: the images labelled in this call.
    """
    claim_label_folder(out_dir, params, overwrite, holds="panoptic labels of another model")
    todo = missing_maps(out_dir, shard_dicts(dataset_dicts, num_shards, shard_index))
    mapper = PanopticLabelMapper(cfg, is_train=False)
    model.eval()
    for d in tqdm(todo, desc="next-round panoptic labels", unit="img", disable=not progress):
        where = f"{d.get('file_name')} (image id {d['image_id']})"
        with torch.no_grad():
            ids, info = model([mapper(d)])[0]["panoptic_seg"]
        things = [a for a in d["annotations"] if isthing.get(a["category_id"], False) and not a.get("iscrowd", 0)]
        boxes = [annotation_box(a, where) for a in things]
        tags = set(d.get("image_labels", ())) | {a["category_id"] for a in d["annotations"]}
        ids, segments = refine_panoptic_label(ids.cpu().numpy(), info, boxes, [a["category_id"] for a in things],
                                              tags, isthing)
        for s in segments:
            s.pop("label", None)
            s.pop("score", None)
        write_panoptic_label(out_dir, d["image_id"], ids, segments)
    if write_json:
        write_panoptic_json(dataset_dicts, categories, out_dir)
    return len(todo)
