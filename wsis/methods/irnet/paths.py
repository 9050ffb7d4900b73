"""
Pixel pairs within a radius and the pixels on the line between them (IRNet §4.2, Eq. 2; §4.4, Eq. 7).

A pair (i, j) is a pixel i and j = i + d for a *direction* d = (dy, dx) with 0 < |d| < radius. Each unordered pair is
listed once: the directions of the half-plane dy > 0, or dy = 0 and dx > 0 (the official ``misc/indexing.py``'s
``PathIndex`` uses the same set). The *path* of d, Π in Eq. 7, is the set of lattice points of the box spanned by 0
and d whose distance to the segment's line is below one pixel (again the official rule); it holds both ends.

Every tensor over pairs is laid out (..., K, H, W): entry [k, y, x] is the pair (i, j) = ((y, x), (y, x) + d_k). Pairs
whose j falls outside the image are *out of bounds*: labels mark them invalid and affinities are 0 there, so the
grid works at any size (no padding of the image to a fixed size).
"""
import functools
from typing import List, Tuple

import torch
import torch.nn.functional as F

__all__ = ["PairIndex", "directions", "path_points"]


@functools.lru_cache(maxsize=None)
def directions(radius: float) -> Tuple[Tuple[int, int], ...]:
    """The K directions (dy, dx) with 0 < dy² + dx² < radius², half-plane dy > 0 or (dy = 0, dx > 0), row-major."""
    if not radius > 1:
        raise ValueError(f"the pair radius must be > 1 (a pair needs a neighbour), got {radius}")
    r = int(torch.tensor(float(radius)).ceil().item())
    out = []
    for dy in range(0, r):
        for dx in range(-r + 1, r):
            if (dy > 0 or dx > 0) and dy * dy + dx * dx < radius * radius:
                out.append((dy, dx))
    return tuple(out)


@functools.lru_cache(maxsize=None)
def path_points(direction: Tuple[int, int]) -> Tuple[Tuple[int, int], ...]:
    """The offsets (from i) of the pixels on the line from i to i + ``direction``, both ends included."""
    dy, dx = direction
    length_sq = dy * dy + dx * dx
    if length_sq == 0:
        return ((0, 0),)
    pts = []
    for y in range(min(0, dy), max(0, dy) + 1):
        for x in range(min(0, dx), max(0, dx) + 1):
            if (dy * x - dx * y) ** 2 < length_sq:  # distance² to the line = (dy·x − dx·y)² / |d|² < 1
                pts.append((y, x))
    return tuple(pts)


class PairIndex:
    """
    The pairs within ``radius`` of a (H, W) grid, as shifted views of padded maps.

    Attributes:
        radius (float). directions (list[(dy, dx)]): the K directions. pad (int): ⌈radius⌉ − 1, the margin of the
        padded maps.
    """

    def __init__(self, radius: float):
        self.radius = float(radius)
        self.directions: List[Tuple[int, int]] = list(directions(self.radius))
        self.pad = max(max(abs(dy), abs(dx)) for dy, dx in self.directions)

    def __len__(self):
        return len(self.directions)

    def _padded(self, x, value):
        p = self.pad
        return F.pad(x, (p, p, 0, p), value=value)  # dy >= 0: no pad above

    def shifted(self, x, value, offsets=None):
        """
        x (Tensor): (..., H, W). Returns (..., K', H, W): x at i + o for each offset o (default: the directions),
        ``value`` where i + o is out of bounds.
        """
        h, w = x.shape[-2:]
        p = self.pad
        xp = self._padded(x, value)
        offsets = self.directions if offsets is None else offsets
        return torch.stack([xp[..., dy:dy + h, p + dx:p + dx + w] for dy, dx in offsets], dim=-3)

    def in_bounds(self, height: int, width: int, device=None) -> torch.Tensor:
        """(K, H, W) bool: j = i + d lies inside the (H, W) grid."""
        ones = torch.ones(height, width, dtype=torch.bool, device=device)
        return self.shifted(ones, False)

    def pair_values(self, x):
        """x (Tensor): (..., H, W). Returns (x_i, x_j): (..., 1, H, W) and (..., K, H, W) (x_j 0 out of bounds)."""
        return x.unsqueeze(-3), self.shifted(x, 0)

    def path_max(self, boundary):
        """
        max over the path Π_ij of ``boundary`` (Eq. 7's max), with the pixels beyond the grid taken as boundary 1.

        Args:
            boundary (Tensor): (..., H, W) in [0, 1].
        Returns:
            Tensor: (..., K, H, W).
        """
        h, w = boundary.shape[-2:]
        p = self.pad
        padded = self._padded(boundary, 1.0)  # (..., H + p, W + 2p)
        wp = padded.shape[-1]
        # where the max is, found without a graph (per direction: its path's slices stacked, argmax); the result is
        # then one gather from the padded map, whose backward is one scatter (not one per path pixel)
        with torch.no_grad():
            where = []
            for d in self.directions:
                pts = path_points(d)
                views = torch.stack([padded[..., dy:dy + h, p + dx:p + dx + w] for dy, dx in pts])
                arg = views.max(0).indices  # (..., H, W): which path pixel holds the max (max() is far faster than
                #                             argmax() over a leading dim on CPU)
                codes = torch.tensor([dy * wp + p + dx for dy, dx in pts], device=padded.device)
                where.append(codes[arg])
            base = (torch.arange(h, device=padded.device)[:, None] * wp
                    + torch.arange(w, device=padded.device)[None, :])
            index = torch.stack(where, dim=-3) + base  # (..., K, H, W) flat positions in the padded map
        lead = padded.shape[:-2]
        flat = padded.reshape(*lead, 1, -1).expand(*lead, len(self.directions), -1)
        return flat.gather(-1, index.reshape(*lead, len(self.directions), -1)).reshape(index.shape)

    def affinities(self, boundary):
        """a_ij = 1 − max_{k ∈ Π_ij} B(x_k) (Eq. 7): (..., H, W) → (..., K, H, W); 0 for out-of-bounds pairs."""
        return 1.0 - self.path_max(boundary)

    def displacement_differences(self, displacement):
        """
        δ(i, j) = D(x_i) − D(x_j) (§4.3) for every pair.

        Args:
            displacement (Tensor): (N, 2, H, W), (dy, dx) in grid cells.
        Returns:
            Tensor: (N, 2, K, H, W) (out-of-bounds pairs: D(x_i)).
        """
        d_i, d_j = self.pair_values(displacement)
        return d_i - d_j

    def direction_tensor(self, device=None, dtype=torch.float32):
        """(2, K, 1, 1): δ̂(i, j) = x_j − x_i = d_k, as (dy, dx), broadcastable against pair tensors."""
        return torch.tensor(self.directions, dtype=dtype, device=device).t()[:, :, None, None]
