"""
The segmentation branch's labels from the second iteration on (``tools/ccgr_iteration.py``): per image the union of
the instance branch's masks of each class (:func:`~.labels.instance_semantic_map`) as ``<out>/<image_id>.png`` (0
background, class + 1, 255 ignore), for ``WSIS.DATA.SEMANTIC_LABELS``. Resumable (maps already written are kept,
``params.json`` records the predictions file and its hash).

Where the paper is silent, wsis's choices: masks of a class the image is not tagged with are dropped (the tags are
the supervision), and an image left without a mask gets an all-ignore map (255: no loss) rather than all
background, which would teach the branch that its tagged objects are background.
"""
import os

import numpy as np
from tqdm import tqdm

from wsis.core.semantic import IGNORE_LABEL, write_label_png
from wsis.data.pseudo_store.format import source_hash_of_file
from wsis.pseudo.label_folder import claim_label_folder, missing_maps

from .labels import instance_semantic_map

__all__ = ["write_instance_semantic_labels"]


def write_instance_semantic_labels(dataset_dicts, predictions, predictions_file, out_dir, score_thresh=0.5,
                                   progress=True, overwrite=False):
    """
    Args:
        dataset_dicts (list[dict]): the images (``image_labels``: tags). predictions (dict): image id → the
            instance branch's predictions (:func:`wsis.data.predictions.read_predictions`), from
            ``predictions_file`` (recorded). score_thresh (float): least score of a mask used.

    Returns:
        dict: ``maps`` written now, ``empty`` (all-ignore maps among them).
    """
    claim_label_folder(out_dir, {"method": "ccgr_instance_union", "predictions": os.path.abspath(predictions_file),
                                 "predictions_sha256": source_hash_of_file(predictions_file),
                                 "score_thresh": float(score_thresh)}, overwrite, "another iteration's labels")
    todo = missing_maps(out_dir, dataset_dicts)
    empty = 0
    for d in tqdm(todo, desc="ccgr semantic labels", unit="img", disable=not progress):
        tags = set(d.get("image_labels", ()))
        mine = [r for r in predictions.get(d["image_id"], ()) if r["category_id"] in tags]
        label = instance_semantic_map(mine, d["height"], d["width"], score_thresh)
        if not label.any():
            label = np.full_like(label, IGNORE_LABEL)
            empty += 1
        write_label_png(label, os.path.join(out_dir, f"{d['image_id']}.png"))
    return {"maps": len(todo), "empty": empty}
