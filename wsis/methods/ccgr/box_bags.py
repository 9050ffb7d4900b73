"""
The bags of CCGR's later iterations ("For the later iterations, the bounding boxes from the IS branch are used as the
bags. For a predicted box, we first compute the box overlap ratio between it and all MCG box proposals, and select
the top 10 proposals with the highest overlap ratios"): one bag per box of the instance branch, labelled with the
box's class. The overlap ratio is read as IoU (the paper does not define it). Pure NumPy.
"""
import numpy as np

from wsis.core.boxes import box_iou_matrix

__all__ = ["box_bags"]


def box_bags(boxes, classes, proposals, objectness, top_k=10):
    """
    Args:
        boxes (ndarray): (B, 4) x1, y1, x2, y2 of the instance branch's boxes. classes (ndarray): (B,) their classes.
        proposals (ndarray): (P, 4) the image's proposals, same units. objectness (ndarray): (P,) their scores.
        top_k (int): proposals per bag (10), by decreasing IoU (ties: the earlier proposal); proposals that do not
            overlap the box at all are never taken.

    Returns:
        dict: the bag dict of :func:`wsis.methods.ccgr.peaks.image_bags` (``boxes``, ``objectness``, ``bag_index``,
        ``bag_labels``, ``peaks`` all NaN): a box without an overlapping proposal gives no bag.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    classes = np.asarray(classes, np.int64).reshape(-1)
    proposals = np.asarray(proposals, np.float32).reshape(-1, 4)
    objectness = np.asarray(objectness, np.float32).reshape(-1)
    if len(boxes) != len(classes) or len(proposals) != len(objectness):
        raise ValueError(f"{len(boxes)} boxes for {len(classes)} classes, {len(proposals)} proposals for "
                         f"{len(objectness)} scores")
    iou = box_iou_matrix(boxes, proposals)  # (B, P)
    members, labels = [], []
    for b in range(len(boxes)):
        order = np.argsort(-iou[b], kind="stable")[:top_k]
        order = order[iou[b, order] > 0]
        if len(order):
            members.append(order)
            labels.append(classes[b])
    index = np.concatenate(members) if members else np.zeros(0, np.int64)
    return {"boxes": proposals[index], "objectness": objectness[index],
            "bag_index": np.concatenate([np.full(len(m), i, np.int64) for i, m in enumerate(members)])
            if members else np.zeros(0, np.int64),
            "bag_labels": np.asarray(labels, np.int64), "peaks": np.full((len(labels), 2), np.nan, np.float32)}
