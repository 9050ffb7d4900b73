"""
Mean-field inference of a CRF with Gaussian and bilateral kernels inside a local window, in plain PyTorch
(batched, differentiable, on the device of its inputs; the idea of ConvCRF, Teichmann & Cipolla 2018).

The energy is the fully-connected CRF's (Krähenbühl & Koltun 2011, Eq. 1-3; :mod:`wsis.core.crf`) with the
pairwise terms cut to a k × k window around each pixel: for Potts compatibility μ(l, l') = [l ≠ l'] and kernels
k_m with weights w_m, one mean-field step is

    Q_i(l) ∝ exp(−U_i(l) + Σ_m w_m Σ_{j ∈ window(i)} k_m(i, j) Q_j(l))

(the constant Σ_j k_m(i, j) of the Potts message is dropped; it does not change the softmax), with the kernels
Gaussian exp(−|p_i − p_j|² / 2θ_γ²), bilateral exp(−|p_i − p_j|² / 2θ_α² − |I_i − I_j|² / 2θ_β²).
``normalization``: ``"none"`` uses them as the paper defines them, j ≠ i (no message from a pixel to itself);
``"symmetric"`` (default) as Krähenbühl's densecrf code does by default, and so pydensecrf and SEC's / DSRG's
training CRF: each kernel becomes n_i k_m(i, j) n_j with n_i = (Σ_j k_m(i, j))^(−1/2), the sums and the message
including j = i, so a message is close to w_m times a weighted average of Q whatever the kernel's width (on a
flat region far from the border, exactly that).
Positions are in **image pixels**: a map at stride s has its grid spacing s, so the θ's of a full-resolution CRF
apply to a downsampled one unchanged. One scalar weight per kernel, so any number of labels works (the labels
of an image may differ from the next one's: ``label_mask``). pydensecrf (:func:`wsis.core.crf.dense_crf`) stays the
reference of the fully-connected CRF; with a window that covers the whole map this one equals a brute-force
fully-connected mean-field and pydensecrf up to its permutohedral lattice's approximation
(``tests/core/test_meanfield.py``).
"""
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

__all__ = ["LocalCRFParams", "local_kernel_pair", "local_kernels", "local_mean_field", "local_message",
           "coarse_to_fine_mean_field", "local_crf", "NORMALIZATIONS"]
NORMALIZATIONS = ("symmetric", "none")


@dataclass(frozen=True)
class LocalCRFParams:
    """
    Kernels and iterations. Defaults: SEC's training CRF (its ``krahenbuhl2013`` wrapper, which DSRG uses for the
    constrain loss and before growing): Gaussian w 3, bilateral w 10, θβ 13, 10 iterations, densecrf's symmetric
    normalisation; its θγ 3 and θα 80 are divided by its ``scale_factor`` 12 in cells of the 41 × 41 map of a 321 px
    crop (7.8 px a cell), so in image pixels θγ = 2 and θα = 52; an 11 × 11 window at the map's resolution.
    """

    iterations: int = 10
    gaussian_weight: float = 3.0
    gaussian_xy_std: float = 2.0
    bilateral_weight: float = 10.0
    bilateral_xy_std: float = 52.0
    bilateral_rgb_std: float = 13.0
    window: int = 11
    normalization: str = "symmetric"

    def __post_init__(self):
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}")
        if int(self.window) != self.window or self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"window must be an odd positive integer, got {self.window!r}")
        if int(self.iterations) != self.iterations or self.iterations < 0:
            raise ValueError(f"iterations must be a non-negative integer, got {self.iterations!r}")
        if min(self.gaussian_xy_std, self.bilateral_xy_std, self.bilateral_rgb_std) <= 0:
            raise ValueError("kernel widths must be positive")

    def to_dict(self):
        return asdict(self)


def _unfold(x, k):
    """(B, C, h, w) → (B, C, k², h·w): every pixel's k × k window (zero outside the map)."""
    b, c, h, w = x.shape
    return F.unfold(x, k, padding=k // 2).view(b, c, k * k, h * w)


def local_kernel_pair(image, stride, params=LocalCRFParams()):
    """
    The Gaussian and the bilateral kernel of every pixel and its window, unweighted (so that their weights may be
    learned, as WSPS's instance CRF does).

    Args:
        image (Tensor): (B, 3, h, w) float colours (0-255 scale) at the map's resolution.
        stride (float): image pixels per map pixel (positions are ``grid × stride``).
        params (LocalCRFParams): widths, window and normalisation (its weights are not used).

    Returns:
        (Tensor, Tensor): (B, k², h·w) k_gauss(i, j), k_bilateral(i, j) for j in i's window (normalised as
        ``params.normalization`` says); 0 for j outside the map, and for j = i without normalisation.
    """
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (B, 3, h, w), got {tuple(image.shape)}")
    b, _, h, w = image.shape
    k = int(params.window)
    r = k // 2
    offs = torch.arange(-r, r + 1, device=image.device, dtype=image.dtype) * float(stride)
    d2 = (offs.view(k, 1) ** 2 + offs.view(1, k) ** 2).reshape(1, k * k, 1)  # squared distance per window offset
    ones = torch.ones(1, 1, h, w, device=image.device, dtype=image.dtype)
    inside = _unfold(ones, k)[:, 0]  # (1, k², h·w): 1 where the neighbour exists
    colours = _unfold(image, k)  # (B, 3, k², h·w)
    centre = image.reshape(b, 3, 1, h * w)
    c2 = ((colours - centre) ** 2).sum(1)  # (B, k², h·w)
    gauss = (torch.exp(-d2 / (2 * params.gaussian_xy_std ** 2)) * inside).expand(b, -1, -1)
    bilat = torch.exp(-d2 / (2 * params.bilateral_xy_std ** 2) - c2 / (2 * params.bilateral_rgb_std ** 2)) * inside
    if params.normalization == "symmetric":
        return tuple(_symmetric(kern, k, h, w) for kern in (gauss, bilat))
    centre_offset = (k * k) // 2
    gauss, bilat = gauss.clone(), bilat.clone()
    gauss[:, centre_offset] = 0.0  # no message from a pixel to itself
    bilat[:, centre_offset] = 0.0
    return gauss, bilat


def local_kernels(image, stride, params=LocalCRFParams()):
    """
    The summed, weighted pairwise kernel of every pixel and its window: w_gauss k_gauss + w_bilateral k_bilateral
    of :func:`local_kernel_pair` (same arguments), (B, k², h·w).
    """
    gauss, bilat = local_kernel_pair(image, stride, params)
    return params.gaussian_weight * gauss + params.bilateral_weight * bilat


def _symmetric(kern, k, h, w):
    """(N, k², h·w) kernel (self included) → n_i k(i, j) n_j, n = (Σ_j k(i, j))^(−1/2) (densecrf's default)."""
    n = kern.sum(1).rsqrt()  # (N, h·w): ≥ 1 term (the pixel itself), never 0
    return kern * n.unsqueeze(1) * _unfold(n.view(-1, 1, h, w), k)[:, 0]


def local_mean_field(unary, kernels, iterations, window, label_mask=None):
    """
    Args:
        unary (Tensor): (B, L, h, w) unary energies U (e.g. −log p).
        kernels (Tensor): (B, k², h·w) from :func:`local_kernels`, ``k = window``.
        iterations (int): mean-field steps (0: the softmax of −U).
        label_mask (Tensor or None): (B, L) bool, the labels each image may take; the others get Q = 0.

    Returns:
        Tensor: (B, L, h, w) marginals Q (differentiable in ``unary``).
    """
    b, n, h, w = unary.shape
    k = int(window)
    if kernels.shape != (b, k * k, h * w):
        raise ValueError(f"kernels must be {(b, k * k, h * w)}, got {tuple(kernels.shape)}")
    if label_mask is not None:
        if label_mask.shape != (b, n) or not label_mask.any(1).all():
            raise ValueError(f"label_mask must be (B, L) = {(b, n)} with a label per image")
        unary = unary.masked_fill(~label_mask.view(b, n, 1, 1), float("inf"))
    q = torch.softmax(-unary, 1)
    for _ in range(int(iterations)):
        q = torch.softmax(-unary + local_message(q, kernels, k), 1)
    return q


def local_message(q, kernels, window):
    """
    The pairwise message of one mean-field step, Σ_j k(i, j) Q_j(l) over i's window.

    Args:
        q (Tensor): (B, L, h, w) marginals. kernels (Tensor): (B, k², h·w) from :func:`local_kernels`.
        window (int): k.

    Returns:
        Tensor: (B, L, h, w).
    """
    b, _, h, w = q.shape
    k = int(window)
    r = k // 2
    weights = kernels.view(b, k * k, 1, h, w)
    padded = F.pad(q, (r, r, r, r))
    msg = torch.zeros_like(q)
    for o in range(k * k):  # one shifted copy per window offset: no (B, L, k², h·w) tensor
        dy, dx = divmod(o, k)
        msg.addcmul_(weights[:, o], padded[:, :, dy:dy + h, dx:dx + w])
    return msg


def coarse_to_fine_mean_field(unary, image, stride, params=LocalCRFParams(), label_mask=None, eps=1e-8):
    """
    Mean-field of a full-resolution CRF run on a map ``stride`` times coarser, its last step at full resolution:
    the unary's probabilities exp(−U) and the image are area-averaged to the map, ``iterations − 1`` steps run
    there, and the last step adds the bilinearly upsampled message of those coarse marginals to the full-resolution
    unary, so that boundaries keep the unary's detail while the window reaches ``stride`` times farther.

    Args:
        unary (Tensor): (B, L, H, W) energies. image (Tensor): (B, 3, H, W) colours (0-255).
        stride (int): coarsening factor (1: :func:`local_mean_field` at full resolution).
        params (LocalCRFParams): kernels in image pixels, window at the coarse map.
        label_mask (Tensor or None): see :func:`local_mean_field`.

    Returns:
        Tensor: (B, L, H, W) marginals.
    """
    b, n, h, w = unary.shape
    if label_mask is not None:
        unary = unary.masked_fill(~label_mask.view(b, n, 1, 1), float("inf"))
    size = (max(1, round(h / stride)), max(1, round(w / stride)))
    probs = torch.softmax(-unary, 1)
    small_p = F.adaptive_avg_pool2d(probs, size) if size != (h, w) else probs
    small_img = F.adaptive_avg_pool2d(image.to(unary.dtype), size) if size != (h, w) else image.to(unary.dtype)
    kern = local_kernels(small_img, float(h) / size[0], params)
    q = local_mean_field(-torch.log(small_p.clamp_min(eps)), kern, max(int(params.iterations) - 1, 0),
                         params.window)
    if int(params.iterations) == 0:
        return probs
    msg = local_message(q, kern, params.window)
    if size != (h, w):
        msg = F.interpolate(msg, size=(h, w), mode="bilinear", align_corners=False)
    return torch.softmax(-unary + msg, 1)


def local_crf(probs, image, stride, params=LocalCRFParams(), unary="log_prob", label_mask=None, eps=1e-5):
    """
    Refine class probabilities against their image.

    Args:
        probs (Tensor): (B, L, h, w) probabilities.
        image (Tensor): (B, 3, H, W) colours (0-255), resized here to (h, w) (area average).
        stride (float): image pixels per map pixel.
        unary (str): "log_prob" (U = −log max(p, eps), the paper's) or "prob" (U = −p, SEC's training CRF that
            DSRG's constrain loss uses).
        label_mask (Tensor or None): (B, L) bool, see :func:`local_mean_field`.

    Returns:
        Tensor: (B, L, h, w) marginals.
    """
    if unary not in ("log_prob", "prob"):
        raise ValueError(f"unary must be 'log_prob' or 'prob', got {unary!r}")
    h, w = probs.shape[-2:]
    small = F.adaptive_avg_pool2d(image.to(probs.dtype), (h, w)) if image.shape[-2:] != (h, w) else image
    kern = local_kernels(small.to(probs.dtype), stride, params)
    u = -torch.log(probs.clamp_min(eps)) if unary == "log_prob" else -probs
    return local_mean_field(u, kern, params.iterations, params.window, label_mask)
