"""
Localisation cues from a classifier's features: CAM (IRNet §3, Eq. 1; Zhou et al., CVPR 2016), Grad-CAM (Selvaraju et
al., ICCV 2017, as WSPS §3.3 uses it), IRNet's multi-scale + flip fusion (the official ``step/make_cam.py``), the
stride arithmetic that maps cues back to the image, and the centred-Gaussian baseline the benchmark compares them to.

Shapes: N images, C channels, K classes (M of them selected), (h, w) the feature map, (H, W) the image.
"""
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

__all__ = [
    "class_activation_maps",
    "grad_cam",
    "multiscale_cams",
    "strided_size",
    "strided_up_size",
    "upsample_cams",
    "center_gaussian_prior",
]


def class_activation_maps(features, weight, classes=None):
    """
    The closed-form CAM: M_c(x) = φ_cᵀ f(x) at every position x (Eq. 1's numerator; no ReLU, no normalisation).

    Args:
        features (Tensor): (N, C, h, w) the last feature map f.
        weight (Tensor): (K, C) or (K, C, 1, 1) the classifier weights φ (a 1×1 conv's weight or a linear layer's).
        classes (sequence[int] or Tensor or None): the rows of ``weight`` to use (default: all K).

    Returns:
        Tensor: (N, K', h, w), K' = len(classes) or K.
    """
    if weight.dim() == 4:
        if weight.shape[2:] != (1, 1):
            raise ValueError(f"a 4-d weight must be (K, C, 1, 1), got {tuple(weight.shape)}")
        weight = weight.flatten(1)
    if weight.dim() != 2 or features.dim() != 4 or features.shape[1] != weight.shape[1]:
        raise ValueError(f"need features (N, C, h, w) and weight (K, C), got {tuple(features.shape)} and "
                         f"{tuple(weight.shape)}")
    if classes is not None:
        idx = torch.as_tensor(classes, dtype=torch.long, device=weight.device).reshape(-1)
        weight = weight.index_select(0, idx)
    return torch.einsum("kc,nchw->nkhw", weight.to(features.dtype), features)


def grad_cam(features, scores, retain_graph=False):
    """
    Grad-CAM (Selvaraju et al. 2017, Eq. 1–2; WSPS §3.3):

        α_k^c = 1/(h·w) Σ_ij ∂y^c/∂A^k_ij,        L^c = ReLU(Σ_k α_k^c A^k).

    The gradient is taken wrt the features only, one ``torch.autograd.grad`` per explained class through the (cheap)
    part of the graph between ``features`` and ``scores``; for each class column the scores of the N images are
    summed, so image n's map uses the gradient of its own score only if the images of the batch do not interact
    (eval-mode batch norm: true for a classifier at inference).

    For a GAP-linear head (y = W·GAP(A)) the gradient is W_ck/(h·w), hence Grad-CAM = ReLU(CAM)/(h·w): equal to CAM
    after ReLU and max-normalisation.

    Args:
        features (Tensor): (N, C, h, w) activations A, part of the graph that produced ``scores`` (requires grad).
        scores (Tensor): (N, M) the pre-sigmoid scores y^c of the M classes to explain.
        retain_graph (bool): keep the graph after the last class (to backpropagate through it again).

    Returns:
        Tensor: (N, M, h, w) non-negative maps, detached (no graph).
    """
    if features.dim() != 4 or scores.dim() != 2 or scores.shape[0] != features.shape[0]:
        raise ValueError(f"need features (N, C, h, w) and scores (N, M), got {tuple(features.shape)} and "
                         f"{tuple(scores.shape)}")
    if not features.requires_grad or not scores.requires_grad:
        raise ValueError("grad_cam needs features that require grad and scores computed from them (run the head "
                         "under torch.enable_grad() on features.requires_grad_())")
    n, m = scores.shape
    h, w = features.shape[2:]
    if m == 0:
        return features.new_zeros((n, 0, h, w))
    maps = []
    for j in range(m):
        (grad,) = torch.autograd.grad(scores[:, j].sum(), features, retain_graph=retain_graph or j < m - 1,
                                      allow_unused=True)
        if grad is None:
            raise ValueError(f"scores[:, {j}] does not depend on the features")
        alpha = grad.mean(dim=(2, 3))  # (N, C)
        maps.append(F.relu(torch.einsum("nc,nchw->nhw", alpha, features.detach())))
    return torch.stack(maps, dim=1)


def strided_size(height, width, stride):
    """(ceil(H / stride), ceil(W / stride)): IRNet's ``get_strided_size``."""
    stride = int(stride)
    if stride < 1:
        raise ValueError(f"stride must be positive, got {stride}")
    return (int(height) - 1) // stride + 1, (int(width) - 1) // stride + 1


def strided_up_size(height, width, stride):
    """(ceil(H / stride)·stride, ceil(W / stride)·stride): IRNet's ``get_strided_up_size``."""
    h, w = strided_size(height, width, stride)
    return h * int(stride), w * int(stride)


def upsample_cams(cams, height, width, stride):
    """
    Stride-``stride`` maps back to the image, as IRNet's ``make_cam`` does for its "high_res" CAMs: bilinear
    (align_corners=False) to (h·stride, w·stride), then the top-left (H, W) crop.

    Args:
        cams (Tensor): (M, h, w) maps of an (H, W) image with h·stride ≥ H and w·stride ≥ W.

    Returns:
        Tensor: (M, H, W).
    """
    if cams.dim() != 3:
        raise ValueError(f"cams must be (M, h, w), got {tuple(cams.shape)}")
    m, h, w = cams.shape
    up_h, up_w = h * int(stride), w * int(stride)
    if up_h < height or up_w < width:
        raise ValueError(f"maps of {h}x{w} at stride {stride} ({up_h}x{up_w}) do not cover a {height}x{width} image")
    if m == 0:
        return cams.new_zeros((0, int(height), int(width)))
    up = F.interpolate(cams[None].float(), size=(up_h, up_w), mode="bilinear", align_corners=False)[0]
    return up[:, : int(height), : int(width)]


def _scaled_size(height, width, scale):
    # IRNet's imutils.pil_rescale: (round(H·s), round(W·s)) with numpy's rounding (half to even, as Python's round)
    return int(round(height * scale)), int(round(width * scale))


def multiscale_cams(
    compute: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    scales: Sequence[float] = (1.0, 0.5, 1.5, 2.0),
    flip: bool = True,
    out_size: Optional[Tuple[int, int]] = None,
    crop_to: Optional[Tuple[int, int]] = None,
    normalize: bool = True,
    mode: str = "bilinear",
):
    """
    IRNet's multi-scale + flip CAM fusion (official ``step/make_cam.py`` and ``net/resnet50_cam.CAM``): for each scale s
    the image is resized to (round(H·s), round(W·s)) and batched with its horizontal flip (one ``compute`` call per
    scale); each view's maps go through ReLU, are resized to ``out_size`` (bilinear, align_corners=False), the flipped
    view's maps are flipped back, and all views of all scales are summed. Optionally the top-left ``crop_to`` is kept
    (IRNet's high-res CAMs: ``out_size = strided_up_size(H, W, 16)``, ``crop_to = (H, W)``). Finally each class map
    is divided by its max + 1e-5 (IRNet: ``cam /= F.adaptive_max_pool2d(cam, (1, 1)) + 1e-5``), so a non-zero map
    peaks at ≈ 1 and an all-zero map stays 0.

    Differences from the official code: IRNet resizes the uint8 image with PIL bicubic before normalising it; here the
    (normalised) float image is resized with ``mode`` (bilinear by default; "bicubic" is closer to IRNet). IRNet
    flips each view back at the feature resolution before resizing; bilinear resizing with align_corners=False
    commutes with a horizontal flip, so that is the same. Nothing here disables autograd: wrap the call in
    ``torch.no_grad()`` (and Grad-CAM's ``compute`` in ``torch.enable_grad()``).

    Args:
        compute: (B, 3, H_s, W_s) → (B, K, h_s, w_s) the raw maps of a batch of B views (B = 2 with ``flip``: the image
            and its flip; else 1), e.g. ``lambda x: F.conv2d(backbone(x), classifier.weight)``.
        image (Tensor): (3, H, W) float, as ``compute`` expects it (normalised).
        scales (sequence[float]): IRNet: (1.0, 0.5, 1.5, 2.0).
        flip (bool): add the horizontal flip of every scale.
        out_size ((int, int) or None): (h_out, w_out) of the summed maps; default (H, W).
        crop_to ((int, int) or None): keep only the top-left (h, w) of the ``out_size`` maps.
        normalize (bool): divide each class map by its max + 1e-5.
        mode (str): how the image is resized ("bilinear", "bicubic", ...; align_corners=False).

    Returns:
        Tensor: (K, h_out, w_out) (or ``crop_to``), float32 on ``compute``'s device.

    Raises:
        ValueError: if a scale makes the image smaller than 1 pixel along a side (the scale is not silently skipped:
            it would change what the fused maps mean), or ``compute`` returns maps of an unexpected shape.
    """
    if image.dim() != 3:
        raise ValueError(f"image must be (3, H, W), got {tuple(image.shape)}")
    if not scales:
        raise ValueError("multiscale_cams needs at least one scale")
    height, width = image.shape[-2:]
    out_size = (int(height), int(width)) if out_size is None else (int(out_size[0]), int(out_size[1]))
    if min(out_size) < 1:
        raise ValueError(f"out_size must be positive, got {out_size}")
    if crop_to is not None and (crop_to[0] > out_size[0] or crop_to[1] > out_size[1]):
        raise ValueError(f"crop_to {tuple(crop_to)} is larger than out_size {out_size}")
    total = None
    for s in scales:
        size = _scaled_size(height, width, float(s))
        if min(size) < 1:
            raise ValueError(f"scale {s} makes the {height}x{width} image {size[0]}x{size[1]} (less than 1 pixel)")
        x = image[None].float()
        if size != (height, width):
            x = F.interpolate(x, size=size, mode=mode, align_corners=False)
        batch = torch.cat([x, x.flip(-1)]) if flip else x
        maps = compute(batch)
        if maps.dim() != 4 or maps.shape[0] != batch.shape[0]:
            raise ValueError(f"compute must return ({batch.shape[0]}, K, h, w) maps, got {tuple(maps.shape)}")
        if total is not None and maps.shape[1] != total.shape[0]:
            raise ValueError(f"compute returned {maps.shape[1]} maps at scale {s}, {total.shape[0]} before")
        maps = F.relu(maps.float())
        if maps.shape[1] == 0:
            up = maps.new_zeros((maps.shape[0], 0) + out_size)
        else:
            up = F.interpolate(maps, size=out_size, mode="bilinear", align_corners=False)
        fused = up[0] + up[1].flip(-1) if flip else up[0]
        total = fused if total is None else total + fused
    if crop_to is not None:
        total = total[:, : int(crop_to[0]), : int(crop_to[1])]
    if normalize and total.shape[0]:
        total = total / (total.flatten(1).max(dim=1).values[:, None, None] + 1e-5)
    return total


def center_gaussian_prior(height, width, num_maps, sigma=0.25, device=None, dtype=torch.float32):
    """
    The "centre prior" baseline: the same centred Gaussian for every class,
    G(y, x) = exp(−(y − c_y)²/(2(σH)²) − (x − c_x)²/(2(σW)²)) over pixel centres, c = ((H − 1)/2, (W − 1)/2),
    divided by its max (so it peaks at exactly 1 even for even sides).

    Args:
        height, width (int): H, W. num_maps (int): M. sigma (float): σ as a fraction of each side.

    Returns:
        Tensor: (M, H, W) in (0, 1].
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    height, width, num_maps = int(height), int(width), int(num_maps)
    ys = torch.arange(height, dtype=torch.float64, device=device) - (height - 1) / 2
    xs = torch.arange(width, dtype=torch.float64, device=device) - (width - 1) / 2
    gy = torch.exp(-ys ** 2 / (2 * (sigma * max(height, 1)) ** 2))
    gx = torch.exp(-xs ** 2 / (2 * (sigma * max(width, 1)) ** 2))
    g = gy[:, None] * gx[None, :]
    if g.numel():
        g = g / g.max()
    return g.to(dtype)[None].expand(num_maps, height, width).contiguous()
