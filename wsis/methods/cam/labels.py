"""
Semantic pseudo labels from localisation cues, as uint8 (H, W) maps: 0 background, contiguous class c → c + 1,
:data:`~wsis.core.semantic.IGNORE_LABEL` (255) for pixels that give no loss.

- :func:`irnet_confident_labels`: IRNet §4.2's confident areas, as the official ``step/cam_to_ir_label.py`` builds
  them (each thresholded map CRF-refined with ``misc/imutils.crf_inference_label``).
- :func:`wsps_labels`: WSPS §3.3 / §4.1, each class's cue thresholded at a fraction of its own max, overlaps to the
  smaller thresholded area (:func:`wsis.core.semantic.semantic_map`).
"""
import numpy as np

from wsis.core.crf import DenseCRFParams, dense_crf
from wsis.core.semantic import IGNORE_LABEL, semantic_map

__all__ = ["IRNET_LABEL_CRF", "label_probabilities", "irnet_confident_labels", "wsps_labels"]

#: IRNet's ``crf_inference_label``: Gaussian sxy 3 compat 3, bilateral sxy 50 srgb 5 compat 10, 10 mean-field
#: iterations, pydensecrf's (symmetric) kernel normalisation.
IRNET_LABEL_CRF = DenseCRFParams(iterations=10, bilateral_weight=10.0, bilateral_xy_std=50.0, bilateral_rgb_std=5.0,
                                 gaussian_weight=3.0, gaussian_xy_std=3.0)


def _numpy(x):
    if hasattr(x, "detach"):  # a torch tensor, on any device
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_cues(cams, classes):
    cams = _numpy(cams).astype(np.float32, copy=False)
    classes = _numpy(classes).astype(np.int64).reshape(-1)
    if cams.ndim != 3 or cams.shape[0] != classes.size:
        raise ValueError(f"cams must be (M, H, W) with M = {classes.size} classes, got shape {cams.shape}")
    if classes.size and (classes.min() < 0 or classes.max() + 1 >= IGNORE_LABEL):
        raise ValueError(f"classes {classes.tolist()} do not fit an 8-bit label map (0..{IGNORE_LABEL - 2})")
    return cams, classes


def label_probabilities(labels, n_labels, gt_prob=0.7):
    """
    The unary of pydensecrf's ``unary_from_labels(labels, n_labels, gt_prob, zero_unsure=False)`` as probabilities:
    ``gt_prob`` on each pixel's label, (1 − gt_prob)/(n − 1) on every other label.

    Args:
        labels (ndarray[int]): (H, W) in 0..n-1. n_labels (int): n ≥ 2.

    Returns:
        ndarray[float32]: (n, H, W), each pixel summing to 1.
    """
    labels = np.asarray(labels)
    if n_labels < 2 or not 0 < gt_prob < 1:
        raise ValueError(f"need n_labels >= 2 and 0 < gt_prob < 1, got {n_labels}, {gt_prob}")
    probs = np.full((n_labels,) + labels.shape, (1.0 - gt_prob) / (n_labels - 1), dtype=np.float32)
    np.put_along_axis(probs, labels[None].astype(np.int64), np.float32(gt_prob), axis=0)
    return probs


def _confident_index(cams, threshold):
    """argmax over [a channel filled with ``threshold``, cams] (ties → the first: the background channel)."""
    bg = np.full((1,) + cams.shape[1:], threshold, dtype=np.float32)
    return np.argmax(np.concatenate([bg, cams]), axis=0)


def irnet_confident_labels(image, cams, classes, fg_threshold=0.30, bg_threshold=0.05, crf=IRNET_LABEL_CRF,
                           gt_prob=0.7):
    """
    IRNet §4.2 ("pixels with attention scores larger than 0.3 as foreground, smaller than 0.05 as background ... each
    confident area is then refined by dense CRF"), exactly as ``cam_to_ir_label.py`` does it:

    1. fg index = argmax over [a background channel filled with ``fg_threshold``, cams]; bg index likewise with
       ``bg_threshold`` (ties go to background: a class needs a score strictly above the threshold);
    2. each index map is CRF-refined (``crf_inference_label``: unary of :func:`label_probabilities` with
       ``gt_prob`` 0.7, :data:`IRNET_LABEL_CRF`, argmax of the marginals);
    3. label = class + 1 where the refined fg map says a class; 0 where both refined maps say background; 255
       (ignore) elsewhere — pixels the bg map gives a class but the fg map does not, the uncertain band.

    Args:
        image (ndarray): (H, W, 3) uint8 (only for the CRF's bilateral kernel; may be None when ``crf`` is None).
        cams (ndarray or Tensor): (M, H, W) cues in [0, 1] at image resolution (IRNet's max-normalised "high_res").
        classes (sequence[int]): (M,) the contiguous class of each map.
        crf (DenseCRFParams or None): the refinement; None skips it (tests, speed).

    Returns:
        ndarray[uint8]: (H, W). With M = 0 (an untagged image): all background, without a CRF call.
    """
    cams, classes = _check_cues(cams, classes)
    m, h, w = cams.shape
    if crf is not None:
        image = np.asarray(image)
        if image.shape != (h, w, 3) or image.dtype != np.uint8:
            raise ValueError(f"image must be ({h}, {w}, 3) uint8 like the cams, got {image.shape} {image.dtype}")
    if m == 0:
        return np.zeros((h, w), dtype=np.uint8)
    keys = np.concatenate([[0], classes + 1])
    index = []
    for threshold in (fg_threshold, bg_threshold):
        idx = _confident_index(cams, threshold)
        if crf is not None:
            idx = np.argmax(dense_crf(image, label_probabilities(idx, m + 1, gt_prob), crf), axis=0)
        index.append(keys[idx])
    fg, bg = index
    out = np.where(fg == 0, IGNORE_LABEL, fg)
    out[(fg == 0) & (bg == 0)] = 0
    return out.astype(np.uint8)


def wsps_labels(cams, classes, threshold=0.5, rest="background"):
    """
    WSPS §3.3 / §4.1: each class's cue is thresholded at ``threshold`` × its own max (a pixel is in class c iff
    cam_c ≥ threshold · max cam_c; an all-zero map gives no pixel); where thresholded maps overlap, "thresholded
    heatmaps occupying a smaller area are given precedence" (:func:`semantic_map`: smallest painted last; equal areas:
    the later class).

    What the paper says: Grad-CAM cues of the tagged classes, a threshold of 50% of the maximum ("increased" from the
    15% Grad-CAM used on ImageNet, for higher precision in cluttered scenes), the smaller-area rule. What it leaves
    open: ``>`` or ``≥``, the resolution at which the maps are thresholded, and the pixels no map covers. Its
    image-tag experiment is Cityscapes' stuff classes, where every pixel has a class and Fig. 3 shows the uncovered
    pixels as "ignore" (``rest="ignore"``). For a dataset with a background class it says nothing about them
    (§3.4's "background rather than ignore" concerns thing pixels outside every box, a box-supervision rule);
    ``rest="background"`` (the default) is this project's reading, not the paper's statement. With M = 0 every
    pixel is ``rest``.

    Args:
        cams (ndarray or Tensor): (M, H, W) non-negative cues. classes (sequence[int]): (M,) contiguous classes.
        threshold (float): the fraction of each map's max (WSPS 0.5; Grad-CAM's paper 0.15).
        rest (str): what uncovered pixels become: "background" (0) or "ignore" (255).

    Returns:
        ndarray[uint8]: (H, W).
    """
    if rest not in ("background", "ignore"):
        raise ValueError(f"rest must be 'background' or 'ignore', got {rest!r}")
    cams, classes = _check_cues(cams, classes)
    m, h, w = cams.shape
    masks = []
    for cam in cams:
        peak = float(cam.max()) if cam.size else 0.0
        masks.append(cam >= threshold * peak if peak > 0 else np.zeros((h, w), dtype=bool))
    ignore = None
    if rest == "ignore":
        ignore = ~np.logical_or.reduce(masks) if masks else np.ones((h, w), dtype=bool)
    return semantic_map(masks, classes.tolist(), h, w, ignore=ignore, dtype=np.uint8)
