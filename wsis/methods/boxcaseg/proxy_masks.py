"""
BoxCaseg's proxy masks (Wang et al., CVPR 2021, §3.4), pure numpy: threshold the crop's fused probability, merge the
instances of an image by "smaller object better", and drop masks by the proxy box agreement.
"""
import numpy as np

from wsis.core.boxes import annotation_box, box_iou_matrix, mask_tight_box, pixel_extent

from wsis.core.merge import paint_smallest_last
from wsis.methods.boxcaseg.crops import resize_to_box
from wsis.pseudo.records import image_record


def threshold_proxy(prob, threshold=0.5):
    """
    Min–max normalise a probability map to [0, 1], then keep pixels strictly above ``threshold`` (0.5, as the
    official inference). A constant map (max = min) carries no foreground/background contrast and gives an
    all-False mask.

    Args:
        prob (ndarray): (h, w) float map, finite.

    Returns:
        ndarray[bool]: (h, w).
    """
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim != 2:
        raise ValueError(f"prob must be an (h, w) map, got shape {prob.shape}")
    if not np.all(np.isfinite(prob)):
        raise ValueError("prob contains NaN or inf")
    if prob.size == 0:
        return np.zeros(prob.shape, dtype=bool)
    lo, hi = prob.min(), prob.max()
    if hi <= lo:
        return np.zeros(prob.shape, dtype=bool)
    return (prob - lo) / (hi - lo) > threshold


def proxy_box_agreement(mask, box_xyxy):
    """
    The proxy box agreement (§3.4): IoU between the tight box of the mask (:func:`wsis.core.boxes.mask_tight_box`)
    and the pixel extent of the GT box (:func:`wsis.core.boxes.pixel_extent`), the integer box the mask was pasted
    into, as the official code compares it; 0 for an empty mask. Comparing with the float box instead would punish
    small objects for the rounding of their box (a perfect mask of a 15-pixel box could not pass 0.95).

    Args:
        mask (ndarray[bool]): (H, W). box_xyxy: (4,) float XYXY GT box in the same image.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    extent = pixel_extent(box_xyxy, *mask.shape)
    tight = mask_tight_box(mask)
    return 0.0 if tight is None else float(box_iou_matrix([tight], [extent])[0, 0])


def merge_and_drop(masks, boxes, drop_threshold=0.95, merge=True):
    """
    Merge and drop (§3.4, Tab. 7). Merge: overlapping pixels go to the instance with the smallest **box** area
    (:func:`paint_smallest_last` with box areas; equal areas: the later index wins), as the official code paints
    larger boxes first. Drop: an instance is valid iff the proxy box agreement of its merged mask exceeds
    ``drop_threshold`` (dropped when IoU ≤ 0.95). Dropped masks stay in the annotations with valid = False (their
    mask loss is off; box and class losses are kept). An empty mask is never valid; ``drop_threshold ≤ 0`` turns the
    drop off (Tab. 7's "merge only"): every non-empty mask is valid, even one whose tight box misses its box.

    Args:
        masks (ndarray[bool]): (N, H, W) thresholded proxy masks in image coordinates.
        boxes (ndarray): (N, 4) GT boxes, XYXY.
        drop_threshold (float): agreement threshold.
        merge (bool): False skips the merge (Tab. 7's "drop only").

    Returns:
        (ndarray[bool], ndarray[float64], ndarray[bool]): merged masks (N, H, W), agreements (N,), valid (N,).
    """
    masks = np.asarray(masks, dtype=bool)
    boxes = np.asarray(boxes, dtype=np.float64)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {masks.shape}")
    if boxes.shape != (masks.shape[0], 4) or not np.all(np.isfinite(boxes)):
        raise ValueError(f"boxes must be ({masks.shape[0]}, 4) finite XYXY, got shape {boxes.shape}")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    merged = paint_smallest_last(masks, areas=areas) if merge else masks.copy()
    agreements = np.array([proxy_box_agreement(m, b) for m, b in zip(merged, boxes)], dtype=np.float64)
    nonempty = merged.any(axis=(1, 2))
    valid = nonempty & ((agreements > drop_threshold) | (drop_threshold <= 0))
    return merged, agreements, valid


def proxy_record(dataset_dict, anns, probs, threshold=0.5, merge=True, drop_threshold=0.95):
    """
    The proxy masks of one image as a pseudo-mask store record (§3.4): each box's crop probability is pasted back into
    its box (:func:`wsis.methods.boxcaseg.crops.resize_to_box`), min–max normalised over the box and thresholded
    (:func:`threshold_proxy`), then the image's masks are merged and dropped (:func:`merge_and_drop`). The
    agreement is stored as the instance's ``score``; a dropped instance is stored with ``valid: false``.

    Args:
        dataset_dict (dict): ``image_id``, ``height``, ``width``.
        anns (list[dict]): the N non-crowd annotations (``id``, ``category_id``, ``bbox`` in its ``bbox_mode``).
        probs (sequence[ndarray]): N (s, s) fused probabilities of the boxes' :func:`proxy_crop` inputs.
    """
    h, w = dataset_dict["height"], dataset_dict["width"]
    if len(probs) != len(anns):
        raise ValueError(f"image id {dataset_dict['image_id']}: {len(anns)} boxes but {len(probs)} probability maps")
    masks = np.zeros((len(anns), h, w), dtype=bool)
    boxes = np.zeros((len(anns), 4), dtype=np.float64)
    for i, (a, p) in enumerate(zip(anns, probs)):
        boxes[i] = annotation_box(a, dataset_dict.get("file_name", ""))
        (x0, y0, x1, y1), box_prob = resize_to_box(p, boxes[i], (h, w))
        masks[i, y0:y1, x0:x1] = threshold_proxy(box_prob, threshold)
    merged, agreements, valid = merge_and_drop(masks, boxes, drop_threshold, merge)
    return image_record(dataset_dict, anns, merged, valid=valid, scores=agreements)


def proxy_settings(cfg):
    """The proxy-mask settings of ``cfg`` (``WSIS.BOXCASEG``) as :func:`proxy_record` keyword arguments."""
    bd = cfg.WSIS.BOXCASEG
    return {"threshold": bd.PROXY_THRESHOLD, "merge": bd.MERGE, "drop_threshold": bd.DROP_THRESHOLD}


def drop_hint(settings):
    """The settings a warning about dropped proxy masks names (:func:`proxy_settings` keywords)."""
    return (f"WSIS.BOXCASEG.DROP_THRESHOLD (now {settings['drop_threshold']:g}) and WSIS.BOXCASEG.PROXY_THRESHOLD "
            f"(now {settings['threshold']:g}; choose it with WSIS.BOXCASEG.EVAL_THRESHOLDS)")
