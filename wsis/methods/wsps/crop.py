"""A box's working window: the box plus a margin, resampled so that the box has a fixed size.

GrabCut and the superpixel proposals both run on this window: a fixed box size makes their cost independent of the
object's size (large boxes are shrunk) and gives small objects enough pixels for GrabCut's colour models and
smoothness term (small boxes are enlarged; at the native resolution GrabCut empties most boxes under 32×32 px).
"""
import cv2
import numpy as np


class BoxWindow:
    """
    Args:
        image_shape (tuple): (H, W) of the image.
        box (tuple[int]): (x0, y0, x1, y1) integer pixel range of the box, exclusive on the right/bottom
            (:func:`wsis.core.boxes.pixel_extent`).
        margin (float): context on each side, as a fraction of the box's width (left/right) and height (top/bottom).
        min_margin (int): at least this many image pixels of context per side (clipped at the image border).
        box_size (int): the longer side of the box after resampling, in pixels.

    Attributes:
        window (tuple[int]): (x0, y0, x1, y1) of the crop in the image. scale (float): crop pixels per image pixel.
        shape (tuple[int]): (h, w) of the resampled crop. rect (tuple[int]): (x0, y0, x1, y1) of the box in the crop.
    """

    def __init__(self, image_shape, box, margin=0.5, min_margin=8, box_size=128):
        h, w = image_shape[:2]
        x0, y0, x1, y1 = (int(v) for v in box)
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise ValueError(f"box {box} is empty or outside the {w}x{h} image")
        self.box = (x0, y0, x1, y1)
        mx = max(int(round(margin * (x1 - x0))), min_margin)
        my = max(int(round(margin * (y1 - y0))), min_margin)
        self.window = (max(x0 - mx, 0), max(y0 - my, 0), min(x1 + mx, w), min(y1 + my, h))
        wx0, wy0, wx1, wy1 = self.window
        self.scale = float(box_size) / max(x1 - x0, y1 - y0)
        self.shape = (max(1, int(round((wy1 - wy0) * self.scale))), max(1, int(round((wx1 - wx0) * self.scale))))
        sy, sx = self.shape[0] / (wy1 - wy0), self.shape[1] / (wx1 - wx0)
        rx0, ry0 = int(round((x0 - wx0) * sx)), int(round((y0 - wy0) * sy))
        rx1 = min(max(int(round((x1 - wx0) * sx)), rx0 + 1), self.shape[1])
        ry1 = min(max(int(round((y1 - wy0) * sy)), ry0 + 1), self.shape[0])
        self.rect = (rx0, ry0, rx1, ry1)

    def crop(self, image):
        """The resampled window of ``image`` ((H, W) or (H, W, C) array) → (h, w[, C]) array."""
        wx0, wy0, wx1, wy1 = self.window
        patch = image[wy0:wy1, wx0:wx1]
        if patch.shape[:2] == self.shape:
            return np.ascontiguousarray(patch)
        interp = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR
        return cv2.resize(patch, (self.shape[1], self.shape[0]), interpolation=interp)

    def box_mask(self):
        """(h, w) bool: the box inside the resampled crop."""
        m = np.zeros(self.shape, dtype=bool)
        rx0, ry0, rx1, ry1 = self.rect
        m[ry0:ry1, rx0:rx1] = True
        return m

    def to_box(self, values):
        """
        Resample an (h, w) crop map (bool or float) back to the image and cut out the box.

        Returns:
            ndarray: (y1 - y0, x1 - x0) map over the box's pixels; bool input → bool (resampled value ≥ 0.5).
        """
        values = np.asarray(values)
        is_bool = values.dtype == bool
        wx0, wy0, wx1, wy1 = self.window
        v = values.astype(np.float32)
        if v.shape != (wy1 - wy0, wx1 - wx0):
            v = cv2.resize(v, (wx1 - wx0, wy1 - wy0), interpolation=cv2.INTER_LINEAR)
        x0, y0, x1, y1 = self.box
        v = v[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0]
        return v >= 0.5 if is_bool else v
