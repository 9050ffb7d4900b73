"""
Fully-connected CRF (Krähenbühl & Koltun, NIPS 2011) mean-field inference through pydensecrf (PyPI: pydensecrf2).

The energy is E(x) = Σ_i ψ_u(x_i) + Σ_{i<j} μ(x_i, x_j) [w_b exp(-|p_i-p_j|²/2θ_α² - |I_i-I_j|²/2θ_β²)
+ w_g exp(-|p_i-p_j|²/2θ_γ²)] with Potts compatibility μ, unary ψ_u = -log P(x_i) (Eq. 1-3 of the paper).
Used to refine pseudo labels (WSPS §3.2, DeepLab's parameters by default) and instance masks at inference (BBTP).
"""
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class DenseCRFParams:
    """Kernel parameters. Defaults: DeepLab's VOC setting (bilateral w 4, θα 67, θβ 3; Gaussian w 3, θγ 1), 10 iters."""

    iterations: int = 10
    bilateral_weight: float = 4.0
    bilateral_xy_std: float = 67.0
    bilateral_rgb_std: float = 3.0
    gaussian_weight: float = 3.0
    gaussian_xy_std: float = 1.0

    def to_dict(self):
        return asdict(self)


#: BBTP's inference refinement (official code): 5 iterations, bilateral w 0.005 (xy 60, rgb 10), Gaussian w 0.05 (xy 3).
BBTP_CRF = DenseCRFParams(iterations=5, bilateral_weight=0.005, bilateral_xy_std=60.0, bilateral_rgb_std=10.0,
                          gaussian_weight=0.05, gaussian_xy_std=3.0)


def dense_crf(image, probs, params=DenseCRFParams(), eps=1e-8):
    """
    Args:
        image (ndarray): (H, W, 3) uint8 image (RGB or BGR: the bilateral kernel only uses colour distances).
        probs (ndarray): (C, H, W) class probabilities (each pixel sums to 1; renormalised defensively).
        params (DenseCRFParams): kernel weights/widths and the number of mean-field iterations.

    Returns:
        ndarray[float32]: (C, H, W) marginals Q after mean-field inference.
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
    p = np.clip(probs, eps, None)
    p = p / p.sum(0, keepdims=True)
    crf = dcrf.DenseCRF2D(w, h, c)
    crf.setUnaryEnergy(np.ascontiguousarray(-np.log(p).reshape(c, -1)))
    crf.addPairwiseGaussian(sxy=params.gaussian_xy_std, compat=params.gaussian_weight)
    crf.addPairwiseBilateral(sxy=params.bilateral_xy_std, srgb=params.bilateral_rgb_std,
                             rgbim=np.ascontiguousarray(image), compat=params.bilateral_weight)
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
