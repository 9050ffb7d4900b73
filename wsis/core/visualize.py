"""Overlay pictures of pseudo masks (WSPS Fig. 2 style): image, boxes, coloured masks, ignore regions in grey."""
import colorsys

import cv2
import numpy as np

from .masks import decode_mask

IGNORE_COLOR = (128, 128, 128)  # BGR grey


def instance_color(i):
    """A distinct BGR colour for instance ``i`` (golden-ratio hue steps)."""
    r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.75, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_pseudo_masks(image, record, class_names=None, alpha=0.5):
    """
    Args:
        image (ndarray): (H, W, 3) uint8 BGR image.
        record (dict): one image record of the pseudo-mask store.
        class_names (list[str] or None): names of the contiguous category ids.
        alpha (float): opacity of the masks.

    Returns:
        ndarray: (H, W, 3) uint8 BGR overlay. Valid masks are filled in their colour with a solid box; invalid
        (dropped) masks get a thin dashed-looking box and no fill; ignore pixels are grey.
    """
    h, w = image.shape[:2]
    if (h, w) != (record["height"], record["width"]):
        raise ValueError(
            f"image id {record['image_id']}: image is {w}x{h} but the record says {record['width']}x{record['height']}"
        )
    out = image.astype(np.float32)
    ignore = np.zeros((h, w), dtype=bool)
    if record.get("ignore"):
        ignore |= decode_mask(record["ignore"])
    for inst in record["instances"]:
        if inst.get("ignore"):
            ignore |= decode_mask(inst["ignore"])
    for i, inst in enumerate(record["instances"]):
        if not inst.get("valid", True):
            continue
        m = decode_mask(inst["segmentation"]) & ~ignore
        out[m] = (1 - alpha) * out[m] + alpha * np.array(instance_color(i), dtype=np.float32)
    out[ignore] = (1 - alpha) * out[ignore] + alpha * np.array(IGNORE_COLOR, dtype=np.float32)
    out = out.clip(0, 255).astype(np.uint8)
    for i, inst in enumerate(record["instances"]):
        x, y, bw, bh = inst["bbox"]
        p0, p1 = (int(round(x)), int(round(y))), (int(round(x + bw)) - 1, int(round(y + bh)) - 1)
        color = instance_color(i)
        valid = inst.get("valid", True)
        cv2.rectangle(out, p0, p1, color, 2 if valid else 1, lineType=cv2.LINE_AA if valid else cv2.LINE_4)
        label = class_names[inst["category_id"]] if class_names else str(inst["category_id"])
        if not valid:
            label += " (dropped)"
        cv2.putText(out, label, (p0[0] + 2, max(p0[1] - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
    return out
