"""
BoxCaseg's training samples (§3.2): one crop sample per box of a box-supervised dataset, one per salient image.

Samples are small dicts that :class:`wsis.methods.boxcaseg.mapper.BoxCasegCropMapper` turns into crops:

- box sample: ``file_name, image_id, height, width, annotation_id, box`` (XYXY, absolute) and ``salient=False``;
- salient sample: ``file_name, image_id, height, width, mask`` (the union of the image's annotation masks, as
  stored: RLE or polygons) and ``salient=True``.
"""
import numpy as np

from wsis.core.boxes import annotation_box, box_iou_matrix
from wsis.core.masks import to_bool_mask

__all__ = ["box_samples", "salient_samples", "salient_mask_of"]


def box_samples(dataset_dicts, overlap_iou=0.5, overlap_drop_prob=0.0, seed=0):
    """
    One sample per non-crowd box with a positive area.

    Args:
        dataset_dicts (list[dict]): Detectron2 dataset dicts with ``annotations`` (``bbox`` in its ``bbox_mode``:
            XYXY_ABS or XYWH_ABS, the default when absent).
        overlap_iou, overlap_drop_prob: the official COCO trick: a box whose IoU with another box of its image
            exceeds ``overlap_iou`` is left out with probability ``overlap_drop_prob`` (drawn once, seeded).

    Returns:
        list[dict]: box samples (module doc), in dataset order.
    """
    rng = np.random.default_rng(seed)
    out = []
    for d in dataset_dicts:
        anns = [a for a in d.get("annotations", ()) if not a.get("iscrowd", 0)]
        boxes = [tuple(annotation_box(a, d["file_name"])) for a in anns]
        iou = box_iou_matrix(boxes)
        np.fill_diagonal(iou, 0.0)
        crowded = iou.max(1) > overlap_iou if len(boxes) > 1 else np.zeros(len(boxes), dtype=bool)
        for a, box, dense in zip(anns, boxes, crowded):
            if box[2] <= box[0] or box[3] <= box[1]:
                continue
            if overlap_drop_prob > 0 and dense and rng.random() < overlap_drop_prob:
                continue
            out.append({"file_name": d["file_name"], "image_id": d["image_id"], "height": d["height"],
                        "width": d["width"], "annotation_id": a.get("id"), "box": box, "salient": False})
    return out


def salient_mask_of(dataset_dict):
    """(H, W) bool union of a salient image's annotation masks; raises ValueError naming the image if it has none."""
    h, w = dataset_dict["height"], dataset_dict["width"]
    segs = [a["segmentation"] for a in dataset_dict.get("annotations", ()) if "segmentation" in a]
    if not segs:
        raise ValueError(f"{dataset_dict['file_name']}: image id {dataset_dict['image_id']} has no salient mask; "
                         "register salient datasets with supervision='mask'")
    mask = np.zeros((h, w), dtype=bool)
    for s in segs:
        mask |= to_bool_mask(s, h, w)
    return mask


def salient_samples(dataset_dicts):
    """One salient sample per image that has a mask annotation (images without one raise, see :func:`salient_mask_of`)."""
    out = []
    for d in dataset_dicts:
        segs = [a["segmentation"] for a in d.get("annotations", ()) if "segmentation" in a]
        if not segs:
            salient_mask_of(d)  # raises with the file and image id
        out.append({"file_name": d["file_name"], "image_id": d["image_id"], "height": d["height"],
                    "width": d["width"], "mask": segs, "salient": True})
    return out
