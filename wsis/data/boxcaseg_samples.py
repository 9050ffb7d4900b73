"""
BoxCaseg's training samples (§3.2): one crop sample per box of a box-supervised dataset, one per salient image.

Samples are small dicts that :class:`wsis.data.boxcaseg_mapper.BoxCasegCropMapper` turns into crops:

- box sample: ``file_name, image_id, height, width, annotation_id, box`` (XYXY, absolute) and ``salient=False``;
- salient sample: ``file_name, image_id, height, width, mask`` (the union of the image's annotation masks, as
  stored: RLE or polygons) and ``salient=True``.
"""
import numpy as np

from wsis.evaluation.masks import to_bool_mask

__all__ = ["box_iou_matrix", "box_samples", "salient_samples", "salient_mask_of"]


def box_iou_matrix(boxes):
    """(N, 4) XYXY boxes → (N, N) pairwise IoU (0 where a box has no area)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0, y0 = np.maximum(b[:, None, 0], b[None, :, 0]), np.maximum(b[:, None, 1], b[None, :, 1])
    x1, y1 = np.minimum(b[:, None, 2], b[None, :, 2]), np.minimum(b[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area[:, None] + area[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def box_samples(dataset_dicts, overlap_iou=0.5, overlap_drop_prob=0.0, seed=0):
    """
    One sample per non-crowd box with a positive area.

    Args:
        dataset_dicts (list[dict]): Detectron2 dataset dicts with ``annotations`` (``bbox``, ``bbox_mode`` XYWH_ABS
            as wsis loaders write it; ``BoxMode`` value 1, the default when absent).
        overlap_iou, overlap_drop_prob: the official COCO trick: a box whose IoU with another box of its image
            exceeds ``overlap_iou`` is left out with probability ``overlap_drop_prob`` (drawn once, seeded).

    Returns:
        list[dict]: box samples (module doc), in dataset order.
    """
    rng = np.random.default_rng(seed)
    out = []
    for d in dataset_dicts:
        anns = [a for a in d.get("annotations", ()) if not a.get("iscrowd", 0)]
        boxes = []
        for a in anns:
            mode = int(a.get("bbox_mode", 1))
            x, y, w, h = (float(v) for v in a["bbox"])
            if mode == 0:  # XYXY_ABS
                w, h = w - x, h - y
            elif mode != 1:
                raise ValueError(f"{d['file_name']}: annotation id {a.get('id')}: bbox_mode {mode} is not absolute")
            boxes.append((x, y, x + w, y + h))
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
