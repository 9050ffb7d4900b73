"""
From IRNet's two outputs to labels (§5): the class-agnostic instance map from the displacement field (§5.1, Eq. 10;
appendix A.1, Eqs. 14–15), instance-wise CAMs (Eq. 11), and the instances and semantic map read off the random walk's
scores (§5.2, the official ``step/make_{ins,sem}_seg_labels.py``).

Shapes: (h, w) the grid of the outputs (1/4 of the image), (H, W) the image, C tagged classes, I instances.
Displacements are (dy, dx) in grid cells.
"""
from typing import Dict, List

import numpy as np
import torch
from scipy import ndimage

__all__ = ["refine_centroids", "cluster_centroids", "instance_map", "instance_cams",
           "instances_from_scores", "scored_fragments", "semantic_from_scores"]

FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def refine_centroids(displacement, steps: int = 100):
    """
    Eq. 10: every pixel's centroid estimate moved ``steps`` times by the field at its current position (bilinear,
    clipped to the grid), starting from the pixel itself: c ← c + D(c).

    Args:
        displacement (Tensor): (2, h, w). steps (int): IRNet's paper: 100; the official code: 300.
    Returns:
        Tensor: (2, h, w) float centroid coordinates (y, x) of each pixel.
    """
    if displacement.dim() != 3 or displacement.shape[0] != 2:
        raise ValueError(f"the displacement field must be (2, h, w), got {tuple(displacement.shape)}")
    d = displacement.float()
    _, h, w = d.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=d.device),
                            torch.arange(w, dtype=torch.float32, device=d.device), indexing="ij")
    cy, cx = ys.clone(), xs.clone()
    flat = d.reshape(2, -1)
    for _ in range(int(steps)):
        y0, x0 = cy.floor(), cx.floor()
        y1, x1 = (y0 + 1).clamp(max=h - 1), (x0 + 1).clamp(max=w - 1)
        fy, fx = cy - y0, cx - x0
        y0, x0, y1, x1 = y0.long(), x0.long(), y1.long(), x1.long()

        def at(yy, xx):
            return flat[:, yy * w + xx]

        step = (at(y0, x0) * (1 - fy) * (1 - fx) + at(y0, x1) * (1 - fy) * fx
                + at(y1, x0) * fy * (1 - fx) + at(y1, x1) * fy * fx)
        cy = (cy + step[0]).clamp(0, h - 1)
        cx = (cx + step[1]).clamp(0, w - 1)
    return torch.stack([cy, cx])


def cluster_centroids(displacement, threshold: float = 2.5):
    """
    Eq. 14: the candidate centroids are the pixels whose displacement is shorter than ``threshold``; each
    4-connected component of them is one centroid. Returns (h, w) int64 component ids, 0 for non-candidates.
    """
    strength = displacement.float().norm(dim=0).cpu().numpy()
    components, _ = ndimage.label(strength < threshold, structure=FOUR_CONNECTED)
    return torch.from_numpy(components.astype(np.int64))


def instance_map(displacement, steps: int = 100, threshold: float = 2.5, unassigned: str = "own"):
    """
    The class-agnostic instance map I (Eq. 15): pixel x belongs to instance k when its refined centroid (Eq. 10)
    lands in the centroid component Ĉ_k.

    Args:
        displacement (Tensor): (2, h, w). unassigned (str): pixels whose centroid lands on no component: "own"
            (one more instance of them all, as the official ``cluster_centroids``) or "none" (no instance, as Eq. 15
            reads; their scores reach the instances only through the walk).
    Returns:
        Tensor: (h, w) int64, instances 0 .. I − 1 numbered by first appearance in row-major order, −1 for none.
    """
    if unassigned not in ("own", "none"):
        raise ValueError(f"unassigned must be 'own' or 'none', got {unassigned!r}")
    comps = cluster_centroids(displacement, threshold)
    c = refine_centroids(displacement, steps).round().long().cpu()
    raw = comps[c[0], c[1]]  # 0: no component
    if unassigned == "none":
        raw = torch.where(raw == 0, torch.full_like(raw, -1), raw)
    # renumber 0 .. I − 1 by first appearance in row-major order (−1 stays −1)
    flat = raw.flatten().numpy()
    values, first = np.unique(flat, return_index=True)
    ids = np.full(len(values), -1, np.int64)
    real = values != -1
    ids[real] = np.argsort(np.argsort(first[real]))
    return torch.from_numpy(ids[np.searchsorted(values, flat)]).view(raw.shape)


def instance_cams(cams, instances):
    """
    Eq. 11: M̄_ck = M_c inside instance k, 0 elsewhere.

    Args:
        cams (Tensor): (C, h, w). instances (Tensor): (h, w) from :func:`instance_map` (−1: no instance).
    Returns:
        Tensor: (C·I, h, w), class-major: row c·I + k is class c, instance k.
    """
    num = int(instances.max().item()) + 1 if instances.numel() else 0
    if not num:
        return cams.new_zeros(0, *cams.shape[1:])
    onehot = torch.stack([instances == k for k in range(num)]).to(cams.dtype)
    return (cams[:, None] * onehot[None].to(cams.device)).reshape(-1, *cams.shape[1:])


def _normalise(scores):
    peak = scores.max() if scores.numel() else scores.new_tensor(0.0)
    return scores / peak if peak > 0 else scores


def semantic_from_scores(scores, classes, bg_threshold: float = 0.25) -> np.ndarray:
    """
    The official ``make_sem_seg_labels``: scores divided by their global max; a background channel of
    ``bg_threshold`` in front; argmax. Returns (H, W) uint8: 0 background, class + 1.

    Args:
        scores (Tensor): (C, H, W) propagated class CAMs. classes (sequence[int]): the contiguous class of each.
    """
    h, w = scores.shape[-2:]
    if len(classes) != scores.shape[0]:
        raise ValueError(f"{scores.shape[0]} score maps for {len(classes)} classes")
    if scores.shape[0] == 0:
        return np.zeros((h, w), np.uint8)
    s = torch.cat([scores.new_full((1, h, w), bg_threshold), _normalise(scores.float())])
    keys = np.array([0] + [int(c) + 1 for c in classes], dtype=np.uint8)
    return keys[s.argmax(0).cpu().numpy()]


def instances_from_scores(scores, classes, num_instances: int, bg_threshold: float = 0.25,
                          min_fragment: float = 0.01) -> List[Dict]:
    """
    The official ``make_ins_seg_labels`` after the walk: scores / global max, a background channel of
    ``bg_threshold``, argmax over (class, instance); each label's 4-connected fragments become instances scored by
    their maximum score. Fragments smaller than ``min_fragment`` × the image are dropped (the official keeps them
    with score 0, which only adds a lowest-ranked detection).

    Args:
        scores (Tensor): (C·I, H, W) propagated instance-wise CAMs, class-major. classes (sequence[int]): the C
            classes. num_instances (int): I.
    Returns:
        list[dict]: ``{"category_id", "mask" (H, W) bool, "score"}``, sorted by descending score (ties: class,
        instance, fragment order).
    """
    h, w = scores.shape[-2:]
    if scores.shape[0] != len(classes) * num_instances:
        raise ValueError(f"{scores.shape[0]} score maps for {len(classes)} classes × {num_instances} instances")
    if scores.shape[0] == 0:
        return []
    s = _normalise(scores.float())
    label = torch.cat([s.new_full((1, h, w), bg_threshold), s]).argmax(0).cpu().numpy()
    s = s.cpu().numpy()
    regions = ((label == n + 1, s[n], classes[n // num_instances]) for n in range(scores.shape[0]))
    return scored_fragments(regions, min_fragment * h * w)


def scored_fragments(regions, min_pixels: float = 0) -> List[Dict]:
    """
    Instances from labelled regions: each region's 4-connected fragments of at least ``min_pixels`` pixels, scored
    by the maximum of the region's score map inside the fragment.

    Args:
        regions (iterable of (mask (H, W) bool, score map (H, W), category)).
    Returns:
        list[dict]: ``{"category_id", "mask", "score"}`` by descending score (ties: region, then fragment order).
    """
    out = []
    for region, score, category in regions:
        fragments, count = ndimage.label(region, structure=FOUR_CONNECTED)
        for f in range(1, count + 1):
            mask = fragments == f
            if mask.sum() >= min_pixels:
                out.append({"category_id": int(category), "mask": mask, "score": float(score[mask].max())})
    order = sorted(range(len(out)), key=lambda i: -out[i]["score"])
    return [out[i] for i in order]
