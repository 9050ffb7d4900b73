"""Reading a dataset dict's image and writing a pseudo-mask store record (:mod:`wsis.data.pseudo_store`): of the
annotations a generator was given (:func:`image_record`), or of instances it made without one (:func:`generated_record`)."""
import cv2
import numpy as np

from wsis.core.boxes import annotation_box, mask_tight_box, xyxy_to_xywh
from wsis.core.masks import encode_mask


def read_image(dataset_dict):
    """(H, W, 3) uint8 BGR image of a dataset dict; raises OSError (→ skipped and reported by the runner)."""
    image = cv2.imread(dataset_dict["file_name"], cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read image {dataset_dict['file_name']}")
    h, w = dataset_dict["height"], dataset_dict["width"]
    if image.shape[:2] != (h, w):
        raise ValueError(f"image is {image.shape[1]}x{image.shape[0]} but the annotations say {w}x{h}")
    return image


def image_record(dataset_dict, anns, masks, instance_ignore=None, image_ignore=None, valid=None, scores=None):
    """
    A pseudo-mask store record of one image.

    Args:
        anns (list[dict]): the N annotations the masks belong to (``id``, ``category_id``, ``bbox`` in its
            ``bbox_mode``; the record stores it as absolute XYWH).
        masks (ndarray[bool]): (N, H, W). instance_ignore: (N, H, W) bool or None. image_ignore: (H, W) bool or None.
        valid (sequence[bool] or None): per instance; default: the mask is not empty (an invalid instance keeps its
            box and class for training, its mask gives no loss). An empty mask is never valid.
        scores (sequence[float] or None): per instance (e.g. BoxCaseg's proxy-box agreement); default 1.
    """
    n = len(anns)
    valid = [True] * n if valid is None else [bool(v) for v in valid]
    scores = [1.0] * n if scores is None else [float(v) for v in scores]
    if instance_ignore is None:
        instance_ignore = [None] * n
    if not (len(masks) == len(instance_ignore) == len(valid) == len(scores) == n):
        raise ValueError(f"image id {dataset_dict['image_id']}: {n} annotations but {len(masks)} masks")
    return {
        "image_id": dataset_dict["image_id"],
        "height": dataset_dict["height"],
        "width": dataset_dict["width"],
        "ignore": encode_mask(image_ignore) if image_ignore is not None and np.any(image_ignore) else None,
        "instances": [
            {
                "annotation_id": a["id"],
                "category_id": a["category_id"],
                "bbox": xyxy_to_xywh(annotation_box(a, dataset_dict.get("file_name", ""))),
                "segmentation": encode_mask(m),
                "valid": bool(v and m.any()),
                "ignore": encode_mask(ign) if ign is not None and ign.any() else None,
                "score": s,
            }
            for a, m, ign, v, s in zip(anns, masks, instance_ignore, valid, scores)
        ],
    }


def generated_record(dataset_dict, instances):
    """
    A record of instances a generator created without a source annotation (e.g. from image tags): each
    ``{"category_id", "mask" (H, W) bool, "score"}`` → ``annotation_id`` null, the mask's tight box, valid, no ignore
    (:func:`wsis.data.pseudo_store.attach_pseudo_masks` appends them as annotations). Empty masks are left out.
    """
    out = []
    for inst in instances:
        mask = np.asarray(inst["mask"], dtype=bool)
        if not mask.any():
            continue
        out.append({"annotation_id": None, "category_id": int(inst["category_id"]),
                    "bbox": xyxy_to_xywh(mask_tight_box(mask)), "segmentation": encode_mask(mask), "valid": True,
                    "ignore": None, "score": float(inst["score"])})
    return {"image_id": dataset_dict["image_id"], "height": dataset_dict["height"], "width": dataset_dict["width"],
            "ignore": None, "instances": out}
