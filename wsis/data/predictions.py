"""
Instance predictions of a trained model on the training images, the input of every "next round" (WSPS §3.4's
labels, CCGR's bags and segmentation labels from its instance branch, the MIL branch's boxes): Detectron2's
``instances_predictions.pth`` (a list of ``{"image_id", "instances": [COCO results]}``, as COCOEvaluator and
``tools/infer_train_set.py`` save it) or a COCO results json (a flat list of results).
"""
import json

import numpy as np

__all__ = ["read_predictions"]


def read_predictions(path, dataset_id_to_contiguous=None):
    """
    Args:
        path (str): an ``instances_predictions.pth`` or a COCO results ``.json``.
        dataset_id_to_contiguous (dict or None): the map of the file's ``category_id`` when they are dataset ids
            (``tools/infer_train_set.py``'s files, COCO results jsons); None: they are already contiguous
            (COCOEvaluator's ``instances_predictions.pth``, saved before it maps the ids back).

    Returns:
        dict: image_id → list of ``{"category_id"`` (contiguous), ``"score"``, ``"box"`` (x0, y0, x1, y1 floats),
        ``"segmentation"`` (RLE, or None for a result without a mask)``}`` in the file's order.

    Raises:
        ValueError: naming the file (and the image id) for a file that is no predictions file or an unknown class.
    """
    if path.endswith(".json"):
        with open(path) as f:
            flat = json.load(f)
        if not isinstance(flat, list):
            raise ValueError(f"{path}: a COCO results json is a list of results, got {type(flat).__name__}")
    else:
        import torch

        try:
            per_image = torch.load(path, map_location="cpu", weights_only=True)
            flat = [dict(r, image_id=p["image_id"]) for p in per_image for r in p.get("instances", [])]
        except Exception as e:
            raise ValueError(f"{path}: cannot read as Detectron2 instances_predictions.pth: {e}") from e
    out = {}
    for r in flat:
        try:
            c, score, (x, y, w, h) = r["category_id"], float(r["score"]), r["bbox"]
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: image id {r.get('image_id')}: a result without category_id, score and "
                             f"an XYWH bbox ({e!r})") from None
        if dataset_id_to_contiguous is not None:
            if c not in dataset_id_to_contiguous:
                raise ValueError(f"{path}: image id {r['image_id']}: unknown category id {c}")
            c = dataset_id_to_contiguous[c]
        box = np.asarray([x, y, x + w, y + h], np.float64)
        if not np.isfinite(box).all() or w < 0 or h < 0:
            raise ValueError(f"{path}: image id {r['image_id']}: bad bbox {r['bbox']}")
        out.setdefault(int(r["image_id"]), []).append(
            {"category_id": int(c), "score": score, "box": box.tolist(), "segmentation": r.get("segmentation")})
    return out
