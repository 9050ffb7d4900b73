"""
Fully-connected CRF (Krähenbühl & Koltun, NIPS 2011) mean-field inference through pydensecrf (PyPI: pydensecrf2).

The energy is E(x) = Σ_i ψ_u(x_i) + Σ_{i<j} μ(x_i, x_j) [w_b exp(-|p_i-p_j|²/2θ_α² - |I_i-I_j|²/2θ_β²)
+ w_g exp(-|p_i-p_j|²/2θ_γ²)] with Potts compatibility μ, unary ψ_u = -log P(x_i) (Eq. 1-3 of the paper).
Used to refine pseudo labels (WSPS §3.2, DeepLab's parameters by default) and instance masks at inference (BBTP).

Units. The message of a kernel is its filtered Q, **normalised** or not: pydensecrf (and DeepLab) normalise each
kernel symmetrically (Krähenbühl & Koltun, ICML 2013), so a weight is the pull of the whole neighbourhood; BBTP's
MATLAB wrapper of the same C++ library (``matlab/DenseCRF/Densecrf.m``, ``NormalizationType = 'NO_NORMALIZATION'``)
does not, so its messages are sums over ≈ 2πθ² neighbours and its small weights (0.005, 0.05) are strong.
``normalization="none"`` reproduces that wrapper exactly; the same numbers with ``"symmetric"`` barely act.
"""
from dataclasses import asdict, dataclass

import numpy as np


NORMALIZATIONS = ("symmetric", "none")


@dataclass(frozen=True)
class DenseCRFParams:
    """Kernel parameters. Defaults: DeepLab's VOC setting (bilateral w 4, θα 67, θβ 3; Gaussian w 3, θγ 1), 10 iters,
    symmetric kernel normalisation (pydensecrf's); ``normalization="none"``: unnormalised kernels (module doc)."""

    iterations: int = 10
    bilateral_weight: float = 4.0
    bilateral_xy_std: float = 67.0
    bilateral_rgb_std: float = 3.0
    gaussian_weight: float = 3.0
    gaussian_xy_std: float = 1.0
    normalization: str = "symmetric"

    def __post_init__(self):
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}")
        if int(self.iterations) != self.iterations or self.iterations < 0:
            raise ValueError(f"iterations must be a non-negative integer, got {self.iterations!r}")

    def to_dict(self):
        return asdict(self)


#: BBTP's inference refinement as its official MATLAB code runs it (``matlab/Run_VOCInst.m``): 5 iterations,
#: bilateral w 0.005 (xy 60, rgb 10), Gaussian w 0.05 (xy 3), unnormalised kernels, unary −log max(p, 1e-5).
BBTP_CRF = DenseCRFParams(iterations=5, bilateral_weight=0.005, bilateral_xy_std=60.0, bilateral_rgb_std=10.0,
                          gaussian_weight=0.05, gaussian_xy_std=3.0, normalization="none")


def dense_crf(image, probs, params=DenseCRFParams(), eps=1e-8):
    """
    Args:
        image (ndarray): (H, W, 3) uint8 image (RGB or BGR: the bilateral kernel only uses colour distances).
        probs (ndarray): (C, H, W) class probabilities (each pixel sums to 1; renormalised defensively).
        params (DenseCRFParams): kernel weights/widths and the number of mean-field iterations.

    Returns:
        ndarray[float32]: (C, H, W) marginals Q after mean-field inference; with 0 iterations the input
        probabilities themselves (a copy; clipped at ``eps`` and renormalised only if they are not valid marginals),
        not a round trip through the CRF.
    """
    import pydensecrf.densecrf as dcrf

    image = np.asarray(image)
    probs = np.asarray(probs, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if probs.ndim != 3 or probs.shape[1:] != image.shape[:2]:
        raise ValueError(f"probs must be (C, H, W) with (H, W) = {image.shape[:2]}, got {probs.shape}")
    c, h, w = probs.shape
    if c < 2:
        raise ValueError("dense_crf needs at least 2 classes (e.g. background, foreground)")
    if h == 0 or w == 0:
        return probs.copy()
    if params.iterations == 0 and probs.min() >= eps and np.abs(probs.sum(0) - 1).max() <= 1e-5:
        return probs.copy()  # valid marginals already: returned as they are, not through a renormalisation
    p = np.clip(probs, eps, None)
    p = p / p.sum(0, keepdims=True)
    if params.iterations == 0:
        return p.astype(np.float32)
    norm = dcrf.NORMALIZE_SYMMETRIC if params.normalization == "symmetric" else dcrf.NO_NORMALIZATION
    crf = dcrf.DenseCRF2D(w, h, c)
    crf.setUnaryEnergy(np.ascontiguousarray(-np.log(p).reshape(c, -1)))
    crf.addPairwiseGaussian(sxy=params.gaussian_xy_std, compat=params.gaussian_weight, normalization=norm)
    crf.addPairwiseBilateral(sxy=params.bilateral_xy_std, srgb=params.bilateral_rgb_std,
                             rgbim=np.require(image, requirements=['C', 'W']), compat=params.bilateral_weight, normalization=norm)
    q = crf.inference(int(params.iterations))
    return np.asarray(q, dtype=np.float32).reshape(c, h, w)


def refine_binary_mask(image, fg_prob, params=BBTP_CRF):
    """
    Refine one soft foreground map (e.g. a pasted instance mask) against the image: a 2-class CRF on
    [1 - p, p]. Returns the refined (H, W) foreground probability.
    """
    fg_prob = np.asarray(fg_prob, dtype=np.float32)
    q = dense_crf(image, np.stack([1.0 - fg_prob, fg_prob]), params)
    return q[1]
