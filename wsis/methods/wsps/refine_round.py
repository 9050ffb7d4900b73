"""
WSPS §3.4 (Fig. 4): round k+1 pseudo labels from a trained model's predictions on the training images.

1. Class probabilities: from predicted instances, P(class c) = the largest ``score × mask`` of the instances of c,
   background = 1 - the largest class probability; or a model's semantic probabilities as they are.
   Channels: background, each class that has a box in the image, and "other" (every class without a box).
2. DenseCRF (DeepLab's parameters by default), then the most probable label per pixel.
3. The box clamp: a pixel of a thing class outside every box of that class (and every "other" pixel) is ignored,
   or made background with ``outside="background"`` (WSPS on VOC, where background is the only stuff class).
   Crowd boxes count as boxes of their class, but their pixels are ignored, never an instance.
4. Instances per box. From instance predictions (§3.4: "the outputs of the network ... as the new approximate
   ground truth"), each GT box is matched one-to-one to a predicted instance of its class (IoU of the prediction's
   tight box with the box's pixel extent ≥ ``match_iou``, greedily by IoU) and keeps that instance's **shape**
   (∩ its box ∩ its class pixels); where matched instances of a class overlap, the higher-scoring one takes the
   pixel, so the network can separate what round 0 had to ignore. Boxes without a match, and every box when the
   predictions are semantic probabilities, fall back to the box's class pixels not owned by a matched instance;
   where two or more such boxes of a class overlap, those pixels are ignored for them (the semantic label keeps the
   class). A box left without pixels is stored as invalid (its box and class still train).
"""
import os

import numpy as np

from wsis.core.boxes import annotation_extent, box_iou_matrix, mask_tight_box
from wsis.core.config import node_to_kwargs
from wsis.core.masks import decode_mask
from wsis.data.predictions import read_predictions
from wsis.data.pseudo_store.format import source_hash_of_file
from wsis.core.crf import DenseCRFParams, dense_crf

from wsis.pseudo.registry import register_generator
from .fusion import IGNORE, split_instances
from wsis.pseudo.records import image_record, read_image


def instance_probabilities(shape, predictions, classes):
    """
    Args:
        shape: (H, W). predictions: list of (contiguous class, score, (H, W) bool mask or RLE).
        classes (list[int]): the classes that get a channel (those with a box in the image).

    Returns:
        ndarray[float32]: (len(classes) + 2, H, W): background, ``classes`` in order, "other"; sums to 1 per pixel.
    """
    h, w = shape
    index = {c: i + 1 for i, c in enumerate(classes)}
    probs = np.zeros((len(classes) + 2, h, w), dtype=np.float32)
    for c, score, mask in predictions:
        m = _as_mask(mask, h, w)
        ch = probs[index.get(int(c), len(classes) + 1)]
        np.maximum(ch, np.float32(score) * m, out=ch)
    probs[0] = 1.0 - probs[1:].max(0)
    probs = np.clip(probs, 1e-4, None)
    return probs / probs.sum(0, keepdims=True)


def select_semantic_channels(probs, classes):
    """(K + 1, H, W) probabilities (background, then contiguous classes) → background, ``classes``, "other"."""
    probs = np.asarray(probs, dtype=np.float32)
    other = np.setdiff1d(np.arange(probs.shape[0] - 1), np.asarray(classes, dtype=np.int64))
    rest = probs[other + 1].sum(0) if other.size else np.zeros(probs.shape[1:], dtype=np.float32)
    out = np.concatenate([probs[[0]], probs[[c + 1 for c in classes]], rest[None]])
    out = np.clip(out, 1e-4, None)
    return out / out.sum(0, keepdims=True)


def match_predictions(boxes, box_classes, predictions, match_iou=0.5):
    """
    One-to-one matching of GT boxes to predicted instances of the same class, greedily by the IoU of the box's pixel
    extent with the tight box of the predicted mask (ties: the higher score, then the lower index).

    Args:
        boxes: N (x0, y0, x1, y1) pixel ranges. box_classes: N classes.
        predictions: M (class, score, (H, W) bool mask).
        match_iou (float): the least IoU of a match.

    Returns:
        list: per box, the index of its prediction or None.
    """
    tight = [mask_tight_box(m) for _, _, m in predictions]
    pairs = []
    for j, ((c, score, _), t) in enumerate(zip(predictions, tight)):
        if t is None:
            continue
        ious = box_iou_matrix(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), [t])[:, 0]
        for i, (bc, v) in enumerate(zip(box_classes, ious)):
            if int(bc) == int(c) and v >= match_iou:
                pairs.append((-v, -score, i, j))
    match, used = [None] * len(boxes), set()
    for _, _, i, j in sorted(pairs):
        if match[i] is None and j not in used:
            match[i] = j
            used.add(j)
    return match


def assign_instances(semantic, boxes, classes, matched):
    """
    Instance masks of step 4 (module doc).

    Args:
        semantic (ndarray): (H, W) uint8, 0 / class + 1 / :data:`IGNORE`.
        boxes: N (x0, y0, x1, y1) pixel ranges. classes: N classes.
        matched: N entries, each None or (score, (H, W) bool mask) of the box's matched prediction.

    Returns:
        (masks (N, H, W) bool, instance_ignore (N, H, W) bool)
    """
    h, w = semantic.shape
    n = len(boxes)
    owner = np.full((h, w), -1, dtype=np.int64)
    for i in sorted((i for i in range(n) if matched[i] is not None), key=lambda i: (matched[i][0], -i)):
        x0, y0, x1, y1 = boxes[i]
        mine = np.zeros((h, w), dtype=bool)
        mine[y0:y1, x0:x1] = matched[i][1][y0:y1, x0:x1]
        owner[mine & (semantic == int(classes[i]) + 1)] = i  # ascending score: the highest-scoring one paints last
    unmatched = [i for i in range(n) if matched[i] is None]
    masks, instance_ignore = np.zeros((n, h, w), dtype=bool), np.zeros((n, h, w), dtype=bool)
    if unmatched:
        free = np.where(owner >= 0, IGNORE, semantic).astype(semantic.dtype)  # owned pixels are not up for grabs
        sub_masks, sub_ignore = split_instances(free, [boxes[i] for i in unmatched], [classes[i] for i in unmatched],
                                                [True] * len(unmatched))
        masks[unmatched], instance_ignore[unmatched] = sub_masks, sub_ignore
    for i in range(n):
        if matched[i] is not None:
            masks[i] = owner == i
    return masks, instance_ignore


def refine_round(image, boxes, box_classes, probs, classes, crowd_boxes=(), crowd_classes=(),
                 params=DenseCRFParams(), outside="ignore", predictions=None, match_iou=0.5):
    """
    Args:
        image (ndarray): (H, W, 3) uint8. boxes: N (x0, y0, x1, y1) pixel ranges of the non-crowd boxes, with
            ``box_classes``. probs: (len(classes) + 2, H, W) from :func:`instance_probabilities` or
            :func:`select_semantic_channels`. params: DenseCRF kernels (``None``: no CRF).
        outside (str): "ignore" or "background" for thing pixels outside their class's boxes.
        predictions (list or None): the instance predictions (class, score, (H, W) bool mask) the probabilities
            came from: boxes keep their matched instance's shape (:func:`match_predictions`, ``match_iou``);
            None (semantic predictions): every box is its class pixels.

    Returns:
        (semantic (H, W) uint8 with 0 / class + 1 / 255, masks (N, H, W) bool, instance_ignore (N, H, W) bool)
    """
    if outside not in ("ignore", "background"):
        raise ValueError(f"outside must be 'ignore' or 'background', got {outside!r}")
    h, w = image.shape[:2]
    q = dense_crf(image, probs, params) if params is not None else probs
    label = q.argmax(0)
    k = len(classes)
    semantic = np.zeros((h, w), dtype=np.uint8)
    inside_class = np.zeros((k + 2, h, w), dtype=bool)
    for (x0, y0, x1, y1), c in list(zip(boxes, box_classes)) + list(zip(crowd_boxes, crowd_classes)):
        if c in classes:
            inside_class[classes.index(c) + 1, y0:y1, x0:x1] = True
    for i, c in enumerate(classes):
        semantic[label == i + 1] = c + 1
    stray = (label > 0) & ~np.take_along_axis(inside_class, label[None], 0)[0]
    semantic[stray] = 0 if outside == "background" else IGNORE
    crowd_pixels = np.zeros((h, w), dtype=bool)
    for x0, y0, x1, y1 in crowd_boxes:
        crowd_pixels[y0:y1, x0:x1] = True
    in_box = np.zeros((h, w), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        in_box[y0:y1, x0:x1] = True
    semantic[crowd_pixels & ~in_box] = IGNORE

    matched = [None] * len(boxes)
    if predictions:
        matched = [None if j is None else (predictions[j][1], predictions[j][2])
                   for j in match_predictions(boxes, box_classes, predictions, match_iou)]
    masks, instance_ignore = assign_instances(semantic, boxes, box_classes, matched)
    return semantic, masks, instance_ignore


# ------------------------------------------------------------------------------------------------- predictions files
def load_predictions(path, dataset_id_to_contiguous=None):
    """
    The masks of a predictions file (:func:`wsis.data.predictions.read_predictions`, which documents the formats
    and ``dataset_id_to_contiguous``): image_id → list of (contiguous class, score, RLE). Results without a mask
    are left out.
    """
    return {i: [(r["category_id"], r["score"], r["segmentation"]) for r in rs if r["segmentation"] is not None]
            for i, rs in read_predictions(path, dataset_id_to_contiguous).items()
            if any(r["segmentation"] is not None for r in rs)}


@register_generator("wsps_round")
class WSPSRoundGenerator:
    """
    Round k+1 labels (:func:`refine_round`) as a pseudo-mask generator for :func:`wsis.pseudo.run_generator`.

    Args:
        predictions (dict or None): image_id → list of (class, score, RLE) (:func:`load_predictions`); an image
            without an entry has no detection.
        semantic_dir (str or None): instead, a folder of ``<image_id>.npz`` files holding ``probs``, a (K + 1, H, W)
            array: background, then the contiguous classes (missing file → the image is skipped and reported).
        outside (str): "ignore" or "background" (see the module doc). crf (dict or None): DenseCRFParams fields
            (DeepLab's by default); ``False`` skips the CRF.
        match_iou (float): least IoU of a box with a predicted instance for the box to keep that instance's shape
            (:func:`match_predictions`); above 1, no box matches (every box is its class pixels).
    """

    #: what a warning about instances without a valid mask points at
    quality_hint = ("WSIS.PSEUDO.WSPS_ROUND.MATCH_IOU and the predictions (a box whose class has no pixel left, e.g. "
                    "an image without detections, is stored invalid)")

    def __init__(self, predictions=None, semantic_dir=None, outside="ignore", crf=None, match_iou=0.5):
        if (predictions is None) == (semantic_dir is None):
            raise ValueError("give exactly one of predictions and semantic_dir")
        if outside not in ("ignore", "background"):
            raise ValueError(f"outside must be 'ignore' or 'background', got {outside!r}")
        self.predictions = predictions
        self.semantic_dir = semantic_dir
        crf_params = None if crf is False else DenseCRFParams(**(crf or {})).to_dict()
        self.params = {"input": "instances" if predictions is not None else "semantic", "outside": outside,
                       "crf": crf_params}
        if predictions is not None:
            self.params["match_iou"] = float(match_iou)

    @classmethod
    def from_config(cls, cfg, metadata=None):
        """
        From ``WSIS.PSEUDO.WSPS_ROUND`` (:func:`wsis.methods.wsps.config.add_wsps_config`); ``metadata`` is the
        source dataset's (``thing_dataset_id_to_contiguous_id`` maps dataset category ids of the predictions).
        The store's provenance also records the predictions (path and sha256).
        """
        r = cfg.WSIS.PSEUDO.WSPS_ROUND
        if bool(r.PREDICTIONS) == bool(r.SEMANTIC_DIR):
            raise ValueError("set exactly one of WSIS.PSEUDO.WSPS_ROUND.PREDICTIONS and WSIS.PSEUDO.WSPS_ROUND.SEMANTIC_DIR")
        if r.CATEGORY_IDS not in ("dataset", "contiguous"):
            raise ValueError(f"WSIS.PSEUDO.WSPS_ROUND.CATEGORY_IDS must be 'dataset' or 'contiguous', got {r.CATEGORY_IDS!r}")
        crf = node_to_kwargs(r.CRF) if r.CRF_ENABLED else False
        if r.SEMANTIC_DIR:
            gen = cls(semantic_dir=os.path.abspath(r.SEMANTIC_DIR), outside=r.OUTSIDE, crf=crf)
            gen.provenance_extra = {"predictions": os.path.abspath(r.SEMANTIC_DIR)}
            return gen
        id_map = (metadata or {}).get("thing_dataset_id_to_contiguous_id") if r.CATEGORY_IDS == "dataset" else None
        if r.CATEGORY_IDS == "dataset" and id_map is None:
            raise ValueError("CATEGORY_IDS 'dataset' needs the source dataset's thing_dataset_id_to_contiguous_id")
        gen = cls(predictions=load_predictions(r.PREDICTIONS, id_map), outside=r.OUTSIDE, crf=crf,
                  match_iou=r.MATCH_IOU)
        gen.provenance_extra = {"predictions": os.path.abspath(r.PREDICTIONS),
                                "predictions_hash": source_hash_of_file(r.PREDICTIONS)}
        return gen

    def __call__(self, dataset_dict):
        image = read_image(dataset_dict)
        h, w = image.shape[:2]
        anns = [a for a in dataset_dict["annotations"] if not a.get("iscrowd", 0)]
        crowd = [a for a in dataset_dict["annotations"] if a.get("iscrowd", 0)]
        boxes = [annotation_extent(a, h, w) for a in anns]
        box_classes = [int(a["category_id"]) for a in anns]
        classes = sorted(set(box_classes) | {int(a["category_id"]) for a in crowd})
        predictions = None
        if self.predictions is not None:
            predictions = [(int(c), float(score), _as_mask(m, h, w))
                           for c, score, m in self.predictions.get(dataset_dict["image_id"], [])]
            probs = instance_probabilities((h, w), predictions, classes)
        else:
            path = os.path.join(self.semantic_dir, f"{dataset_dict['image_id']}.npz")
            with np.load(path) as z:
                probs = select_semantic_channels(z["probs"], classes)
            if probs.shape[1:] != (h, w):
                raise ValueError(f"{path}: probabilities are {probs.shape[2]}x{probs.shape[1]}, the image {w}x{h}")
        params = None if self.params["crf"] is None else DenseCRFParams(**self.params["crf"])
        semantic, masks, instance_ignore = refine_round(
            image, boxes, box_classes, probs, classes,
            [annotation_extent(a, h, w) for a in crowd], [int(a["category_id"]) for a in crowd],
            params, self.params["outside"], predictions, self.params.get("match_iou", 0.5))
        return image_record(dataset_dict, anns, masks, instance_ignore, semantic == IGNORE)


def _as_mask(mask, height, width):
    m = decode_mask(mask) if isinstance(mask, dict) else np.asarray(mask, dtype=bool)
    if m.shape != (height, width):
        raise ValueError(f"a predicted mask is {m.shape[1]}x{m.shape[0]}, the image {width}x{height}")
    return m
