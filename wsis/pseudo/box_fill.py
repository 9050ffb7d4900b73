"""The box-fill baseline: every box's pseudo mask is its filled rectangle."""
import numpy as np

from wsis.core.boxes import annotation_box, annotation_extent

from .registry import register_generator
from wsis.core.merge import paint_smallest_last
from .records import image_record


@register_generator("boxfill")
class BoxFillGenerator:
    """
    Box-fill pseudo masks (the baseline of BoxCaseg Tab. 1 and WSPS Tab. 1): each box's pixel extent
    (:func:`wsis.core.boxes.pixel_extent`).

    Args:
        overlap (str): "keep" leaves overlapping rectangles as they are; "smallest" gives each overlapping pixel
            to the smallest box (:func:`paint_smallest_last`).

    Crowd annotations get no pseudo mask. Every produced mask is valid with score 1.
    """

    def __init__(self, overlap="keep"):
        if overlap not in ("keep", "smallest"):
            raise ValueError(f"overlap must be 'keep' or 'smallest', got {overlap!r}")
        self.params = {"overlap": overlap}

    @classmethod
    def from_config(cls, cfg, metadata=None):
        """From ``WSIS.PSEUDO.BOXFILL`` (:func:`wsis.pseudo.config.add_pseudo_config`)."""
        return cls(overlap=cfg.WSIS.PSEUDO.BOXFILL.OVERLAP)

    def __call__(self, dataset_dict):
        h, w = dataset_dict["height"], dataset_dict["width"]
        anns = [a for a in dataset_dict["annotations"] if not a.get("iscrowd", 0)]
        masks = np.zeros((len(anns), h, w), dtype=bool)
        for i, a in enumerate(anns):
            x0, y0, x1, y1 = annotation_extent(a, h, w)
            masks[i, y0:y1, x0:x1] = True
        if self.params["overlap"] == "smallest":
            boxes = [annotation_box(a) for a in anns]
            masks = paint_smallest_last(masks, areas=[(b[2] - b[0]) * (b[3] - b[1]) for b in boxes])
        return image_record(dataset_dict, anns, masks, valid=[True] * len(anns))
