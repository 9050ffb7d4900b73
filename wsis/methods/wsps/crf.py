"""
"Fusion + DenseCRF": resolve a box's unsure pixels with a fully-connected CRF on the box's window.

The unary of box b's binary CRF comes from its fusion states (:mod:`.fusion`) and the box's inscribed ellipse
(boxes are filled more in the middle than in the corners): P(foreground) = ``lut[state]`` in the corners and
``lut_ellipse[state]`` inside the ellipse, ``outside`` in the margin around the box. DenseCRF (DeepLab's kernels by
default, :class:`wsis.core.crf.DenseCRFParams`) then lets colour and position pull each unsure pixel towards the
confident pixels it resembles; a pixel is the box's where the refined probability exceeds ``threshold``. The refined
masks go through :func:`.fusion.fuse` again (as FG / BG states), so the overlap rules stay the fusion's.
"""
import cv2
import numpy as np

from wsis.core.crf import DenseCRFParams, refine_binary_mask

from .config import DEFAULT_LUT, DEFAULT_LUT_ELLIPSE
from .crop import BoxWindow
from .fusion import BG, FG
from .grabcut import ellipse_mask



def box_unary(states, lut=DEFAULT_LUT, lut_ellipse=DEFAULT_LUT_ELLIPSE):
    """(h, w) BG / UNSURE / FG states of a box → (h, w) float32 foreground probability (see the module doc)."""
    states = np.asarray(states)
    inner = ellipse_mask(states.shape, (0, 0, states.shape[1], states.shape[0]), 1.0)
    return np.where(inner, np.asarray(lut_ellipse, np.float32)[states], np.asarray(lut, np.float32)[states])


def crf_box_states(image_bgr, box, states, params=DenseCRFParams(), lut=DEFAULT_LUT, lut_ellipse=DEFAULT_LUT_ELLIPSE,
                   outside=0.1, threshold=0.5, margin=0.25, box_size=128):
    """
    Args:
        image_bgr (ndarray): (H, W, 3) uint8. box: (x0, y0, x1, y1) pixel range. states: the box's fusion states.
        params (DenseCRFParams): CRF kernels and iterations (positions in pixels of the resampled window, whose box
            is ``box_size`` pixels long). outside (float): P(foreground) in the window's margin.

    Returns:
        ndarray[uint8]: (y1 - y0, x1 - x0) FG where the refined probability exceeds ``threshold``, else BG.
    """
    x0, y0, x1, y1 = box
    win = BoxWindow(image_bgr.shape, box, margin=margin, box_size=box_size)
    wx0, wy0, wx1, wy1 = win.window
    prob = np.full((wy1 - wy0, wx1 - wx0), outside, dtype=np.float32)
    prob[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0] = box_unary(states, lut, lut_ellipse)
    if prob.shape != win.shape:
        prob = cv2.resize(prob, (win.shape[1], win.shape[0]), interpolation=cv2.INTER_LINEAR)
    q = refine_binary_mask(win.crop(image_bgr), prob, params)
    return np.where(win.to_box(q) > threshold, FG, BG).astype(np.uint8)
