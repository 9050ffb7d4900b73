"""The box-fill baseline: every box's pseudo mask is its filled rectangle."""
import numpy as np

from wsis.data.pseudo_store import encode_mask

from .build import register_generator
from .merge import paint_smallest_last


def box_to_pixel_range(bbox, height, width):
    """
    Pixels covered by an XYWH box: columns ``[round(x), round(x + w))`` (at least one pixel), likewise rows,
    clipped to the image. Returns (x0, y0, x1, y1) integer bounds, exclusive on the right/bottom.
    """
    x, y, w, h = bbox
    x0 = min(max(int(round(x)), 0), width - 1)
    y0 = min(max(int(round(y)), 0), height - 1)
    x1 = min(max(int(round(x + w)), x0 + 1), width)
    y1 = min(max(int(round(y + h)), y0 + 1), height)
    return x0, y0, x1, y1


@register_generator("boxfill")
class BoxFillGenerator:
    """
    Box-fill pseudo masks (the baseline of BoxCaseg Tab. 1 and WSPS Tab. 1).

    Args:
        overlap (str): "keep" leaves overlapping rectangles as they are; "smallest" gives each overlapping pixel
            to the smallest box (:func:`paint_smallest_last`).

    Crowd annotations get no pseudo mask. Every produced mask is valid with score 1.
    """

    def __init__(self, overlap="keep"):
        if overlap not in ("keep", "smallest"):
            raise ValueError(f"overlap must be 'keep' or 'smallest', got {overlap!r}")
        self.params = {"overlap": overlap}

    def __call__(self, dataset_dict):
        h, w = dataset_dict["height"], dataset_dict["width"]
        anns = [a for a in dataset_dict["annotations"] if not a.get("iscrowd", 0)]
        masks = np.zeros((len(anns), h, w), dtype=bool)
        for i, a in enumerate(anns):
            x0, y0, x1, y1 = box_to_pixel_range(a["bbox"], h, w)
            masks[i, y0:y1, x0:x1] = True
        if self.params["overlap"] == "smallest":
            masks = paint_smallest_last(masks, areas=[a["bbox"][2] * a["bbox"][3] for a in anns])
        return {
            "image_id": dataset_dict["image_id"],
            "height": h,
            "width": w,
            "ignore": None,
            "instances": [
                {
                    "annotation_id": a["id"],
                    "category_id": a["category_id"],
                    "bbox": [float(v) for v in a["bbox"]],
                    "segmentation": encode_mask(m),
                    "valid": True,
                    "ignore": None,
                    "score": 1.0,
                }
                for a, m in zip(anns, masks)
            ],
        }
