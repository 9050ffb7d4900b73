"""
Centre-context-gap refinement (CCGR; CCGR paper, Eq. 2-3): a box's coordinates are parameters, moved by gradient
descent to maximise the gap between the mean segmentation score inside the box and in its context (the box 1.5×
wider and higher around the same centre, minus the box).

    Φ(B) = ∫_B S / A_B                                   (Eq. 2)
    L_CCGR = Φ(C) − Φ(B),   C = B̃ − B                    (Eq. 3)

Φ is computed on the integral image of the score map S, bilinearly interpolated at fractional corners: for a map
that is constant on each pixel this is the exact integral over the box (so Φ is differentiable in x1, y1, x2, y2,
with the gradient of the exact area integral). Pure PyTorch, every box of a batch in one tensor, on the device of
the maps.

Where the paper is silent or loose, the choices (``CCGRParams``):

* Φ(C) is the mean over the context ring, (∫_B̃ S − ∫_B S) / (A_B̃ − A_B) (``context_mean="ring"``); the paper writes
  Φ(C) = Φ(B̃) − Φ(B), a difference of two means, available as ``"paper"``.
* B̃ is clipped to the image: pixels outside the image have no score and do not count.
* The step is plain gradient descent in units of each box's width and height (so one step size serves boxes of
  every size), boxes are kept inside the image and at least ``min_size`` pixels wide and high.
* Coarse to fine (``blur``; wsis's, not the paper's): Eq. 3 has no gradient where a box and its context ring lie in
  one region of constant score, so a box on a small part of its object (what WSDDN picks) stays there on a clean
  score map. The first half of the steps is split evenly into coarse levels; in level l each box descends Eq. 3 on
  its map blurred with a Gaussian of σ = ``blur[l]`` × √(its area at the level's start). The blur gives the box a
  gradient towards its object's extent (blurring keeps a step edge's inflection in place). The second half descends
  on the map itself, which settles the box on the paper's objective. The units of the step are the box's size at
  each level's start. ``blur=()`` is the paper's plain descent.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["CCGRParams", "integral_image", "box_sums", "box_means", "ccgr_loss", "refine_boxes", "points_in_boxes",
           "gaussian_blur"]


@dataclass(frozen=True)
class CCGRParams:
    """Steps and step size of the descent (the paper's Fig. 4-5: up to 200 steps), the context's scale (1.5), how
    Φ(C) is computed, the smallest box side in pixels, and the coarse levels: each one's blur σ over √(box area)
    (the module docstring; ``()``: every step on the map itself, the paper's plain descent)."""

    steps: int = 200
    step_size: float = 0.05
    context_scale: float = 1.5
    context_mean: str = "ring"
    min_size: float = 2.0
    blur: tuple = (0.5, 0.25)

    def __post_init__(self):
        blur = tuple(float(b) for b in self.blur)
        if any(not math.isfinite(b) or b <= 0 for b in blur):
            raise ValueError(f"blur must be finite σ factors > 0, got {self.blur!r}")
        object.__setattr__(self, "blur", blur)
        if self.context_mean not in ("ring", "paper"):
            raise ValueError(f"context_mean must be 'ring' or 'paper', got {self.context_mean!r}")
        if int(self.steps) != self.steps or self.steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {self.steps!r}")
        if self.context_scale <= 1.0:
            raise ValueError(f"context_scale must be > 1, got {self.context_scale!r}")


def integral_image(maps):
    """(..., H, W) → (..., H + 1, W + 1): I[y, x] = Σ of the map over rows < y, columns < x."""
    out = maps.cumsum(-1).cumsum(-2)
    return torch.nn.functional.pad(out, (1, 0, 1, 0))


def _interpolate(integral, xs, ys):
    """Bilinear value of each map's integral image at (xs, ys): integral (N, H + 1, W + 1), xs/ys (N, K)."""
    h, w = integral.shape[-2] - 1, integral.shape[-1] - 1
    xs, ys = xs.clamp(0, w), ys.clamp(0, h)
    x0, y0 = xs.detach().floor().clamp(max=w - 1).long(), ys.detach().floor().clamp(max=h - 1).long()
    ax, ay = xs - x0, ys - y0
    flat = integral.flatten(1)
    row = w + 1

    def at(yy, xx):
        return flat.gather(1, yy * row + xx)

    return ((1 - ay) * ((1 - ax) * at(y0, x0) + ax * at(y0, x0 + 1))
            + ay * ((1 - ax) * at(y0 + 1, x0) + ax * at(y0 + 1, x0 + 1)))


def box_sums(integral, boxes):
    """
    Args:
        integral (Tensor): (N, H + 1, W + 1) integral image of each box's score map (:func:`integral_image`).
        boxes (Tensor): (N, 4) x1, y1, x2, y2 in pixels (fractional allowed; clipped to the map).

    Returns:
        (Tensor, Tensor): (N,) ∫_B S and (N,) the clipped area A_B; differentiable in the boxes.
    """
    h, w = integral.shape[-2] - 1, integral.shape[-1] - 1
    x1, y1 = boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h)
    x2, y2 = torch.maximum(boxes[:, 2].clamp(0, w), x1), torch.maximum(boxes[:, 3].clamp(0, h), y1)
    xs, ys = torch.stack([x2, x1, x2, x1], 1), torch.stack([y2, y2, y1, y1], 1)
    v = _interpolate(integral, xs, ys)
    return v[:, 0] - v[:, 1] - v[:, 2] + v[:, 3], (x2 - x1) * (y2 - y1)


def box_means(integral, boxes, eps=1e-6):
    """Φ(B) of Eq. 2 for every box: (N,) mean score over the box's part inside the map."""
    total, area = box_sums(integral, boxes)
    return total / area.clamp_min(eps)


def ccgr_loss(integral, boxes, context_scale=1.5, context_mean="ring", eps=1e-6):
    """
    L_CCGR of Eq. 3 for every box.

    Args:
        integral (Tensor): (N, H + 1, W + 1). boxes (Tensor): (N, 4).
        context_scale (float): B̃'s sides over B's (1.5). context_mean (str): "ring" or "paper" (module docstring).

    Returns:
        Tensor: (N,) Φ(C) − Φ(B).
    """
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) / 2 * context_scale
    outer = torch.cat([c - half, c + half], 1)
    inner_sum, inner_area = box_sums(integral, boxes)
    outer_sum, outer_area = box_sums(integral, outer)
    inner = inner_sum / inner_area.clamp_min(eps)
    if context_mean == "paper":
        context = outer_sum / outer_area.clamp_min(eps) - inner
    else:
        context = (outer_sum - inner_sum) / (outer_area - inner_area).clamp_min(eps)
    return context - inner


def refine_boxes(maps, boxes, params=CCGRParams(), stop_points=None):
    """
    CCGR on a batch of boxes: each box descends L_CCGR on its own score map, coarse to fine (``params.blur``).
    With ``stop_points`` a box never holds more of its points than it started with (at least 1): a step that would
    take one more moves only the box's sides that go inwards. This is wsis's form of the paper's "we stop the CCGR
    process if the refined bounding box contains more than one peak" (Tab. 3's discussion): a box cannot grow over
    two instances of its class, and a box held at a peak still settles its other sides.

    Args:
        maps (Tensor): (N, H, W) each box's score map (e.g. its class's segmentation probabilities; one image's
            boxes share the image's maps: index them, ``maps[classes]``), or (H, W) for all.
        boxes (Tensor): (N, 4) x1, y1, x2, y2 in the maps' pixels.
        params (CCGRParams): steps, step size (in units of the box's size), context, minimum size, the
            coarse-to-fine levels.
        stop_points (Tensor or None): (N, K, 2) x, y of each box's peaks (the peaks of its class in its image; NaN
            rows pad), or None: no stop.

    Returns:
        Tensor: (N, 4) refined boxes (no gradient), inside the map.
    """
    boxes = torch.as_tensor(boxes, dtype=torch.float32, device=maps.device).reshape(-1, 4)
    if not torch.isfinite(boxes).all():
        raise ValueError("boxes must be finite")
    if maps.dim() == 2:
        maps = maps.expand(len(boxes), *maps.shape)
    if maps.dim() != 3 or len(maps) != len(boxes):
        raise ValueError(f"maps (N, H, W) or (H, W) {tuple(maps.shape)} for {len(boxes)} boxes")
    if len(boxes) == 0:
        return boxes.clone()
    h, w = maps.shape[-2:]
    maps = maps.float()
    limit = boxes.new_tensor([w, h, w, h])
    x = _clip(boxes.clone(), w, h, params.min_size)
    if stop_points is not None:
        stop_points = torch.as_tensor(stop_points, dtype=torch.float32, device=maps.device).reshape(len(boxes), -1, 2)
        allowed = _points_inside(x, stop_points).clamp_min(1)
    for factor, steps in _levels(params):
        sides = x[:, 2:] - x[:, :2]
        integral = integral_image(gaussian_blur(maps, factor * sides.prod(1).sqrt()) if factor else maps)
        size = sides.clamp_min(params.min_size).repeat(1, 2)  # the units of this level's steps
        for _ in range(steps):
            x.requires_grad_(True)
            loss = ccgr_loss(integral, x, params.context_scale, params.context_mean).sum()
            (grad,) = torch.autograd.grad(loss, x)
            with torch.no_grad():
                step = _clip(x - params.step_size * grad * size * size, w, h, params.min_size)
                if stop_points is not None:  # a step onto a new point moves only the sides that go inwards
                    inward = torch.cat([torch.maximum(step[:, :2], x[:, :2]), torch.minimum(step[:, 2:], x[:, 2:])], 1)
                    step = torch.where((_points_inside(step, stop_points) > allowed)[:, None], inward, step)
                x = step
    return torch.minimum(x.detach(), limit)


def _levels(params):
    """(σ factor, steps) of each level: the coarse levels share the first half of the steps, the map itself (0) the
    rest; without coarse levels every step is on the map."""
    coarse = int(params.steps) // 2 if params.blur else 0
    n = len(params.blur)
    out = [(f, (coarse * (k + 1)) // n - (coarse * k) // n) for k, f in enumerate(params.blur)]
    return [(f, s) for f, s in out + [(0.0, int(params.steps) - coarse)] if s > 0]


def points_in_boxes(boxes, points):
    """
    Args:
        boxes (Tensor): (N, 4) x1, y1, x2, y2. points (Tensor): (N, K, 2) each box's points, or (1, K, 2) shared.

    Returns:
        Tensor[bool]: (N, K) x1 ≤ x < x2 and y1 ≤ y < y2 (a NaN point is in no box).
    """
    px, py = points[..., 0], points[..., 1]
    return (boxes[:, 0:1] <= px) & (px < boxes[:, 2:3]) & (boxes[:, 1:2] <= py) & (py < boxes[:, 3:4])


def _points_inside(boxes, points):
    return points_in_boxes(boxes, points).sum(1)


def _clip(boxes, w, h, min_size):
    x1 = boxes[:, 0].clamp(0, max(w - min_size, 0))
    y1 = boxes[:, 1].clamp(0, max(h - min_size, 0))
    x2 = torch.maximum(boxes[:, 2], x1 + min_size).clamp(max=w)
    y2 = torch.maximum(boxes[:, 3], y1 + min_size).clamp(max=h)
    return torch.stack([x1, y1, x2, y2], 1)


def gaussian_blur(maps, sigmas):
    """
    Each map blurred with its own Gaussian, approximated by three passes of a box filter along each axis (of radius
    r or r + 1, so that their variances add up to about σ²; each pass is a difference of a cumulative sum, so the
    cost does not grow with σ). A pass averages over the part of its window inside the map, so pixels outside the
    map do not count and a border keeps its level.

    Args:
        maps (Tensor): (N, H, W). sigmas (Tensor): (N,) σ in pixels, ≥ 0 (below about 0.7: the map unchanged).

    Returns:
        Tensor: (N, H, W), on the maps' device.
    """
    var = torch.as_tensor(sigmas, dtype=torch.float32, device=maps.device).reshape(-1).clamp_min(0) ** 2
    # a pass of radius r has variance r (r + 1) / 3; the three passes take radius r or r + 1 to add up to about σ²
    low = torch.floor((torch.sqrt(1 + 4 * var) - 1) / 2).long()
    wider = torch.round(3 * (var - low * (low + 1)) / (2 * (low + 1))).clamp(0, 3).long()
    if len(maps) == 0 or not bool(((low > 0) | (wider > 0)).any()):
        return maps
    out = maps
    for k in range(3):
        radius = low + (wider > k).long()
        out = _box_pass(_box_pass(out, radius, 2), radius, 1)
    return out


def _box_pass(maps, radius, dim):
    """The mean of each map over the window i − r ... i + r along ``dim`` (1 or 2), clipped to the map; r (N,)."""
    n = maps.shape[dim]
    cum = F.pad(maps.cumsum(dim), (1, 0) if dim == 2 else (0, 0, 1, 0))
    i = torch.arange(n, device=maps.device)
    hi = (i[None] + radius[:, None] + 1).clamp(max=n)  # (N, n)
    lo = (i[None] - radius[:, None]).clamp(min=0)
    shape = (len(maps), 1, n) if dim == 2 else (len(maps), n, 1)
    hi, lo = hi.view(shape), lo.view(shape)
    total = cum.gather(dim, hi.expand_as(maps)) - cum.gather(dim, lo.expand_as(maps))
    return total / (hi - lo).to(maps.dtype)
