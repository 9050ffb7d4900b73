"""
The job of ``tools/make_ccgr_bags.py``: the MIL branch's bags of every image, written as one bag file
(:mod:`.bag_file`): in the first iteration the peaks of its tagged classes' cues and the proposals holding one peak
each (Eq. 4); in later ones the instance branch's boxes and their top-10 proposals by IoU (:mod:`.box_bags`).
"""
import logging
import multiprocessing as mp
import os

import cv2
import numpy as np
import torch
from tqdm import tqdm

from .bag_file import write_bag_file, write_proposal_file
from .box_bags import box_bags
from .peaks import contrast_objectness, image_bags
from .proposals import selective_search_boxes

__all__ = ["make_bags", "cue_foreground", "label_foreground"]

logger = logging.getLogger(__name__)


def cue_foreground(cams, shape):
    """O of Eq. 4 from an image's cues: the largest of its (M, h, w) maps at each pixel, resized to ``shape``
    (bilinear) and clipped to [0, 1]; 0 everywhere without maps."""
    h, w = shape
    if len(cams) == 0:
        return np.zeros((h, w), np.float32)
    top = np.asarray(cams, np.float32).max(0)
    return np.clip(cv2.resize(top, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def label_foreground(label, shape, ignore_value=0.5):
    """O of Eq. 4 from a semantic label map (the paper's: the segmentation map of AffinityNet, Ahn & Kwak 2018):
    1 on class pixels (1-254), 0 on background (0), ``ignore_value`` on ignore (255: unknown, so neither), resized
    to ``shape`` (nearest) if it differs."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"a semantic label map is (H, W), got {label.shape}")
    out = np.where(label == 255, np.float32(ignore_value), (label > 0).astype(np.float32)).astype(np.float32)
    h, w = shape
    if out.shape != (h, w):
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_NEAREST)
    return out


class _Job:
    def __init__(self, cues, predictions, proposals, top_k, penalty, objectness, min_peak, score_thresh,
                 keep_proposals, foreground_labels=None):
        self.cues, self.predictions, self.proposals = cues, predictions, proposals
        self.foreground_labels = foreground_labels
        self.top_k, self.penalty, self.objectness, self.min_peak = top_k, penalty, objectness, min_peak
        self.score_thresh, self.keep_proposals = score_thresh, keep_proposals

    def __call__(self, d):
        where = f"{d.get('file_name')} (image id {d['image_id']})"
        tags = set(d.get("image_labels", ()))
        if not tags:
            return d["image_id"], None, None, f"{where}: no tags"
        if self.cues is not None and d["image_id"] not in self.cues:
            return d["image_id"], None, None, f"{where}: no cues"
        if self.proposals is not None:
            if d["image_id"] not in self.proposals:
                return d["image_id"], None, None, f"{where}: no proposals"
            boxes, scores = self.proposals[d["image_id"]]
        else:
            image = cv2.imread(d["file_name"], cv2.IMREAD_COLOR)
            if image is None:
                return d["image_id"], None, None, f"{where}: cannot read the image"
            boxes, scores = selective_search_boxes(image)
        objectness = scores if self.objectness == "proposals" else np.zeros(len(boxes), np.float32)
        kept = (boxes, scores) if self.keep_proposals else None
        if self.cues is None:
            preds = [r for r in self.predictions.get(d["image_id"], ())
                     if r["score"] >= self.score_thresh and r["category_id"] in tags]
            bags = box_bags([r["box"] for r in preds], [r["category_id"] for r in preds], boxes, objectness,
                            self.top_k)
            return d["image_id"], bags, kept, None
        classes, cams = self.cues[d["image_id"]]
        keep = [i for i, c in enumerate(classes) if int(c) in tags]
        stride = self.cues.entries[d["image_id"]]["stride"]
        if self.foreground_labels:
            path = os.path.join(self.foreground_labels, f"{d['image_id']}.png")
            label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            if label is None:
                return d["image_id"], None, None, f"{where}: no semantic label map {path}"
            if label.shape[:2] != (d["height"], d["width"]):
                return d["image_id"], None, None, (f"{where}: semantic label map {path} is {label.shape[1]}x"
                                                   f"{label.shape[0]}, the image {d['width']}x{d['height']}")
            fg = label_foreground(label, (d["height"], d["width"]))
        else:
            fg = cue_foreground(cams, (d["height"], d["width"]))
        boxes = torch.as_tensor(np.asarray(boxes, np.float32))
        if self.objectness == "contrast":
            objectness = contrast_objectness(torch.from_numpy(fg), boxes)
        bags = image_bags(torch.from_numpy(np.asarray(cams)[keep]), [int(classes[i]) for i in keep], stride, boxes,
                          torch.as_tensor(objectness), torch.from_numpy(fg), self.top_k, self.penalty, self.min_peak)
        return d["image_id"], bags, kept, None


def make_bags(dataset_dicts, cues, out_file, proposals=None, top_k=10, penalty=0.1, objectness="contrast",
              min_peak=0.5, workers=1, progress=True, predictions=None, score_thresh=0.5, save_proposals=None,
              foreground_labels=None):
    """
    Args:
        dataset_dicts (list[dict]): images with ``image_labels`` (tags).
        cues (CueStore or None): their class response maps (CAM cues: ``tools/make_cues.py``): peak bags; None:
            bags from ``predictions``.
        out_file (str): the bag file to write (atomically).
        proposals (dict or None): image id → ((P, 4) XYXY boxes, (P,) scores), e.g. a detectron2 proposal pickle;
            None: whole-image Selective-Search-style boxes (:func:`~.proposals.selective_search_boxes`).
        top_k, penalty: Eq. 4's bag size and background weight.
        objectness (str): B_S of Eq. 4: "contrast" (:func:`~.peaks.contrast_objectness`: O's centre-context gap,
            wsis's, for proposals without a learned objectness), "proposals" (the proposals' scores: a detectron2
            file's objectness logits, or the grouping's fill) or "none" (0: the ranking is the background term
            alone, which puts the parts inside an object first). Box bags (``predictions``) rank by IoU; they
            keep the proposals' scores with "proposals", else 0.
        min_peak (float): a peak must reach this fraction of its class map's maximum (wsis's; PRM's rule alone
            finds about 20 peaks an image in from-scratch CAMs of the copy-paste set, which has 1.8 objects).
        predictions (dict or None): image id → the instance branch's predictions
            (:func:`wsis.data.predictions.read_predictions`), those of a tagged class scoring ≥ ``score_thresh``
            give one bag each: the later iterations' bags (with ``cues`` None).
        foreground_labels (str or None): with ``cues``, a folder of semantic label maps ``<image_id>.png`` (0
            background, class + 1, 255 ignore) whose foreground is Eq. 4's O (:func:`label_foreground`; the paper
            uses AffinityNet's segmentation map); None: the largest of the image's cue maps
            (:func:`cue_foreground`). An image without its map gets no bag (a skip with the reason).
        save_proposals (str or None): also write every image's proposals as a detectron2 proposal pickle (to pass
            as ``proposals`` in the next iterations instead of grouping again).

    Returns:
        (dict, list): image id → bags (images with at least one bag), and the skipped (image id, reason).
    """
    if objectness not in ("none", "proposals", "contrast"):
        raise ValueError(f"objectness must be 'none', 'proposals' or 'contrast', got {objectness!r}")
    if (cues is None) == (predictions is None):
        raise ValueError("bags come from cues (peaks) or from predictions (boxes): give exactly one")
    if foreground_labels and cues is None:
        raise ValueError("foreground_labels is Eq. 4's O of peak bags: it needs cues")
    job = _Job(cues, predictions, proposals, top_k, penalty, objectness, min_peak, score_thresh,
               save_proposals is not None, foreground_labels)
    done, skipped, kept = {}, [], {}
    bar = tqdm(total=len(dataset_dicts), desc="ccgr bags", unit="img", disable=not progress)

    def collect(results):
        for image_id, bags, image_proposals, reason in results:
            if image_proposals is not None:
                kept[image_id] = image_proposals
            if reason:
                skipped.append((image_id, reason))
            elif len(bags["bag_labels"]):
                done[image_id] = bags
            bar.update()

    if workers > 1 and len(dataset_dicts) > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            collect(pool.imap(job, dataset_dicts, chunksize=8))
    else:
        collect(map(job, dataset_dicts))
    bar.close()
    if save_proposals is not None:
        write_proposal_file(save_proposals, kept)
    write_bag_file(out_file, done)
    return done, skipped
