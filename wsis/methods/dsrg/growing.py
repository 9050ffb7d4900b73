"""
Deep seeded region growing (DSRG §3.3): seeds grow into the unlabelled pixels that the segmentation network is
confident about, as one batched tensor operation on the device of its inputs.

A pixel u is a *candidate* of class c (Eq. 3) when c is its arg max over the image's classes (background + tags)
and H_{u,c} > θ_c (θ_b for the background, θ_f for the foreground classes). Two variants:

- ``"official"`` (the authors' Caffe layer): the 8-connected components of each class's candidates that contain
  one of the class's original seeds *that is itself a candidate* take that class;
- ``"bfs"`` (the paper's text): every seed pixel of c visits its 8 neighbours, labels the unlabelled candidates
  of c, and the new pixels visit theirs, until nothing changes (a seed pixel below the threshold still grows).

Both restart from the original seeds at every call (as the official layer: the seeds come from the data), never
relabel a seeded pixel and never grow *through* another class's seeds (the official code lets a component touch
them, relabelling none; the paper's SRG regions "contain exactly one of the initial seeds"). The components are
found by geodesic dilation (3 × 3 max-pooling inside the candidates until it stops changing), so a batch of maps
and classes grows at once. :func:`region_growing_reference` is the per-pixel queue both must equal.
"""
from collections import deque

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["VARIANTS", "candidates", "region_growing", "region_growing_reference"]
VARIANTS = ("official", "bfs")
_CHECK_EVERY = 4  # dilation steps between convergence checks (each check is one device sync)


def _check(probs, seeds, tags):
    if probs.dim() != 4:
        raise ValueError(f"probs must be (B, C, h, w), got {tuple(probs.shape)}")
    b, c, h, w = probs.shape
    if seeds.shape != (b, h, w):
        raise ValueError(f"seeds must be (B, h, w) = {(b, h, w)}, got {tuple(seeds.shape)}")
    if tags.shape != (b, c):
        raise ValueError(f"tags must be (B, C) = {(b, c)}, got {tuple(tags.shape)}")


def candidates(probs, tags, fg_threshold=0.85, bg_threshold=0.99):
    """
    Eq. 3 for every pixel. Args: probs (Tensor): (B, C, h, w), channel 0 background. tags (Tensor): (B, C) bool
    (the background is always allowed). Returns: Tensor: (B, h, w) long, the class a pixel is a candidate of, or −1.
    """
    tags = tags.clone()
    tags[:, 0] = True
    p = probs.masked_fill(~tags[:, :, None, None], -1.0)
    best, arg = p.max(1)
    thr = torch.where(arg == 0, torch.full_like(best, bg_threshold), torch.full_like(best, fg_threshold))
    return torch.where(best > thr, arg, torch.full_like(arg, -1))


def region_growing(probs, seeds, tags, fg_threshold=0.85, bg_threshold=0.99, variant="official", ignore=-1):
    """
    Args:
        probs (Tensor): (B, C, h, w) class probabilities H (channel 0 background).
        seeds (Tensor): (B, h, w) long: the seed class of each pixel (0 background), ``ignore`` where unlabelled.
        tags (Tensor): (B, C) bool: the classes present in each image (channel 0 is set to True).
        fg_threshold, bg_threshold (float): θ_f, θ_b (the paper: 0.85, 0.99).
        variant (str): "official" or "bfs" (module doc).

    Returns:
        Tensor: (B, h, w) long, the grown labels (seeds kept; ``ignore`` where still unlabelled). No gradient.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    _check(probs, seeds, tags)
    b, c, h, w = probs.shape
    with torch.no_grad():
        cand = candidates(probs, tags, fg_threshold, bg_threshold)
        seeded = seeds != ignore
        seed_cls = torch.where(seeded, seeds, torch.zeros_like(seeds))
        classes = torch.arange(c, device=probs.device).view(1, c, 1, 1)
        seed_of = (seed_cls.unsqueeze(1) == classes) & seeded.unsqueeze(1)  # (B, C, h, w)
        cand_of = cand.unsqueeze(1) == classes
        free = (~seeded).unsqueeze(1)
        if variant == "official":
            region = cand_of & (free | seed_of)
            marker = seed_of & cand_of
        else:
            region = (cand_of & free) | seed_of
            marker = seed_of
        grown = _reconstruct(marker.to(probs.dtype), region.to(probs.dtype)) > 0
        grown &= free  # only unlabelled pixels take a new label; candidates are disjoint between classes
        new = (grown * classes).sum(1)
        return torch.where(grown.any(1), new, seeds)


def _reconstruct(marker, region):
    """Geodesic dilation of ``marker`` inside ``region`` (both (B, C, h, w) 0/1) until it stops: 8-connected."""
    cur = marker * region
    while True:
        prev = cur
        for _ in range(_CHECK_EVERY):
            cur = F.max_pool2d(cur, 3, stride=1, padding=1) * region
        if torch.equal(cur, prev):
            return cur


def region_growing_reference(probs, seeds, tags, fg_threshold=0.85, bg_threshold=0.99, variant="official",
                             ignore=-1):
    """
    :func:`region_growing` as a per-pixel queue on NumPy arrays, one image and one class at a time: the oracle of
    its tests and benchmark (``benchmarks/bench_dsrg.py``). Same arguments (tensors or arrays); returns (B, h, w).
    """
    probs, seeds, tags = (np.asarray(torch.as_tensor(x).cpu()) for x in (probs, seeds, tags))
    b, c, h, w = probs.shape
    out = seeds.astype(np.int64).copy()
    for i in range(b):
        allowed = tags[i].astype(bool).copy()
        allowed[0] = True
        best_c, best_p = -np.ones((h, w), np.int64), np.full((h, w), -1.0)
        for k in range(c):  # arg max over allowed classes, the first on ties (as torch's max)
            if allowed[k]:
                better = probs[i, k] > best_p
                best_c[better], best_p[better] = k, probs[i, k][better]
        thr = np.where(best_c == 0, bg_threshold, fg_threshold)
        cand = np.where(best_p > thr, best_c, -1)
        seeded = seeds[i] != ignore
        for k in range(c):
            mine = seeded & (seeds[i] == k)
            inside = (cand == k) & (~seeded | mine) if variant == "official" else ((cand == k) & ~seeded) | mine
            start = mine & (cand == k) if variant == "official" else mine
            queue = deque(zip(*np.nonzero(start)))
            seen = start.copy()
            while queue:
                y, x = queue.popleft()
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        v, u = y + dy, x + dx
                        if 0 <= v < h and 0 <= u < w and not seen[v, u] and inside[v, u]:
                            seen[v, u] = True
                            queue.append((v, u))
                            if not seeded[v, u]:
                                out[i, v, u] = k
    return out
