"""
DSRG's labels of a trained head, detectron2-free: the final labels (the "+Retrain" stage of Tab. 2: its
probabilities restricted to the image's tags, refined by DenseCRF, the paper's test-time CRF, arg max) and the
grown labels (its seeds grown on those probabilities, §3.3, unlabelled pixels kept as 255).
"""
import numpy as np
import torch

from wsis.core.crf import DenseCRFParams, dense_crf
from wsis.core.semantic import IGNORE_LABEL

from .growing import region_growing

__all__ = ["final_label_map", "grown_label_map", "restricted_probs"]


def restricted_probs(probs, tags, image=None, crf=DenseCRFParams()):
    """(C, H, W) probabilities with the classes not in ``tags`` set to 0 and the rest renormalised (and refined by
    DenseCRF against ``image`` unless it or ``crf`` is None)."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 3 or probs.shape[0] < 2 or probs.shape[0] > 255:
        raise ValueError(f"probs must be (C, H, W) with 2 ≤ C ≤ 255, got {probs.shape}")
    keep = np.zeros(len(probs), bool)
    keep[0] = True
    tags = [int(t) for t in tags]
    if any(not 0 <= t < len(probs) - 1 for t in tags):
        raise ValueError(f"tags {tags} are not classes of a {len(probs)}-channel map")
    keep[[t + 1 for t in tags]] = True
    p = probs[keep]
    p = p / np.maximum(p.sum(0, keepdims=True), 1e-12)
    if image is not None and crf is not None and len(p) > 1:
        p = dense_crf(image, p, crf)
    out = np.zeros_like(probs)
    out[keep] = p
    return out


def grown_label_map(probs, seeds, tags, image=None, crf=DenseCRFParams(), fg_threshold=0.85, bg_threshold=0.99,
                    variant="official"):
    """
    Args:
        probs (ndarray): (C, H, W) softmax of the head. seeds (ndarray): (H, W) uint8 seed map (0 background,
            class + 1, 255 unlabelled). tags (list[int]): contiguous class ids. variant: "official", "bfs" or "none".

    Returns:
        ndarray[uint8]: (H, W) the seeds grown on the (restricted, CRF-refined) probabilities; 255 unlabelled.
    """
    p = restricted_probs(probs, tags, image, crf)
    seeds = np.asarray(seeds)
    if seeds.shape != p.shape[1:]:
        raise ValueError(f"seeds {seeds.shape} and probs {p.shape[1:]} differ in size")
    if variant == "none":
        return seeds.astype(np.uint8)
    s = torch.from_numpy(seeds.astype(np.int64))
    s[s == IGNORE_LABEL] = -1
    t = torch.zeros(1, len(p), dtype=torch.bool)
    t[0, [0] + [int(c) + 1 for c in tags]] = True
    out = region_growing(torch.from_numpy(p)[None], s[None], t, fg_threshold, bg_threshold, variant)[0]
    out[out < 0] = IGNORE_LABEL
    return out.numpy().astype(np.uint8)


def final_label_map(probs, tags, image=None, crf=DenseCRFParams()):
    """
    Args:
        probs (ndarray): (C, H, W) softmax of the head (channel 0 background, channel c + 1 class c).
        tags (list[int]): the image's contiguous class ids (the others cannot win).
        image (ndarray or None): (H, W, 3) uint8, for the CRF; None or ``crf=None``: no CRF.

    Returns:
        ndarray[uint8]: (H, W): 0 background, class + 1 (the PNG format of the semantic pseudo labels).
    """
    return restricted_probs(probs, tags, image, crf).argmax(0).astype(np.uint8)
