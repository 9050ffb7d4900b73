"""
Per-pixel mask loss that honours weak labels (invalid instances and ignore pixels give no loss), and the targets it
takes from sampled proposals. Pure PyTorch: proposals are read by duck typing (``has``, ``gt_*`` fields).
"""
import torch
import torch.nn.functional as F


def select_class_logits(mask_logits, gt_classes):
    """
    Args:
        mask_logits (Tensor): (N, C, M, M) class-specific or (N, 1, M, M) class-agnostic logits.
        gt_classes (Tensor[long]): (N,) contiguous class of each instance.

    Returns:
        Tensor: (N, M, M) logits of each instance's class.
    """
    if mask_logits.size(1) == 1:
        return mask_logits[:, 0]
    return mask_logits[torch.arange(mask_logits.size(0), device=mask_logits.device), gt_classes]


def weak_mask_rcnn_loss(mask_logits, gt_classes, gt_masks, valid, ignore=None, normalization="pixels"):
    """
    Mask R-CNN's binary cross-entropy (He et al. 2017, Eq. of L_mask) restricted to instances with a valid mask and
    to pixels outside the ignore region: the loss of "Proxy Mask R-CNN" (BoxCaseg §3.3) and of WSPS's instance
    branch trained on pseudo labels with ignore regions (WSPS §3.1).

    Args:
        mask_logits (Tensor): (N, C, M, M) or (N, 1, M, M) predicted logits for N foreground proposals.
        gt_classes (Tensor[long]): (N,) class of each proposal's matched ground truth.
        gt_masks (Tensor): (N, M, M) targets in [0, 1] (ROI-aligned masks, thresholded or soft).
        valid (Tensor[bool]): (N,) whether the instance has a usable mask.
        ignore (Tensor[bool] or None): (N, M, M) pixels that give no loss.
        normalization (str): "pixels": mean over all counted pixels (Detectron2's mean when nothing is ignored);
            "instances": mean per instance, then over instances.

    Returns:
        (Tensor, dict): scalar loss (``mask_logits.sum() * 0`` when nothing counts, so autograd/DDP stay happy) and
        float diagnostics ``accuracy``, ``false_positive``, ``false_negative``, ``num_valid``, ``ignored_fraction``.
    """
    if normalization not in ("pixels", "instances"):
        raise ValueError(f"normalization must be 'pixels' or 'instances', got {normalization!r}")
    n = mask_logits.size(0)
    if gt_masks.shape[0] != n or valid.shape[0] != n or gt_classes.shape[0] != n:
        raise ValueError(
            f"mask loss inputs disagree: {n} logits, {gt_classes.shape[0]} classes, {gt_masks.shape[0]} masks, "
            f"{valid.shape[0]} valid flags"
        )
    stats = {"num_valid": float(valid.sum()), "accuracy": 0.0, "false_positive": 0.0, "false_negative": 0.0,
             "ignored_fraction": 0.0}
    if n == 0 or not bool(valid.any()):
        return mask_logits.sum() * 0, stats

    logits = select_class_logits(mask_logits, gt_classes)[valid]
    targets = gt_masks[valid].to(dtype=logits.dtype)
    weight = torch.ones_like(targets)
    if ignore is not None:
        weight = weight * (~ignore[valid]).to(dtype=logits.dtype)
    counted = weight.sum()
    stats["ignored_fraction"] = float(1.0 - counted / weight.numel())
    if counted == 0:
        return mask_logits.sum() * 0, stats

    pixel_loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none") * weight
    if normalization == "pixels":
        loss = pixel_loss.sum() / counted
    else:
        per_instance = pixel_loss.flatten(1).sum(1) / weight.flatten(1).sum(1).clamp(min=1.0)
        has_pixels = weight.flatten(1).sum(1) > 0
        loss = per_instance[has_pixels].mean()

    with torch.no_grad():
        pred = logits > 0
        gt = targets > 0.5
        w = weight > 0
        stats["accuracy"] = float((pred == gt)[w].float().mean())
        stats["false_positive"] = float((pred & ~gt)[w].sum() / (~gt)[w].sum().clamp(min=1))
        stats["false_negative"] = float((~pred & gt)[w].sum() / gt[w].sum().clamp(min=1))
    return loss, stats


def weak_mask_targets(instances, mask_size: int, ignore_threshold: float = 0.5):
    """
    Gather per-proposal targets from sampled foreground proposals (``label_and_sample_proposals`` copies every
    ``gt_*`` field of the matched ground truth onto them).

    Returns:
        gt_classes (N,), gt_masks (N, M, M) float, valid (N,) bool, ignore (N, M, M) bool or None.
        Instances without ``gt_masks`` (box-only data) are invalid; without ``gt_mask_valid`` a present mask is
        valid; ``gt_ignore`` (an :class:`wsis.core.fields.PerImageField`) marks pixels that give no loss.
    """
    classes, masks, valid, ignore = [], [], [], []
    any_ignore = any(x.has("gt_ignore") for x in instances)
    for x in instances:
        n = len(x)
        device = x.proposal_boxes.device
        boxes = x.proposal_boxes.tensor
        classes.append(x.gt_classes)
        if x.has("gt_masks"):
            masks.append(x.gt_masks.crop_and_resize(boxes, mask_size).to(dtype=torch.float32))
            valid.append(x.gt_mask_valid.bool() if x.has("gt_mask_valid") else torch.ones(n, dtype=torch.bool, device=device))
        else:
            masks.append(torch.zeros(n, mask_size, mask_size, device=device))
            valid.append(torch.zeros(n, dtype=torch.bool, device=device))
        if any_ignore:
            if x.has("gt_ignore"):
                ignore.append(x.gt_ignore.crop_and_resize(boxes, mask_size) > ignore_threshold)
            else:
                ignore.append(torch.zeros(n, mask_size, mask_size, dtype=torch.bool, device=device))
    return torch.cat(classes), torch.cat(masks), torch.cat(valid), torch.cat(ignore) if any_ignore else None


def valid_mask_loss(mask_logits, instances, ignore_threshold=0.5, normalization="pixels"):
    """
    :func:`weak_mask_rcnn_loss` of the sampled foreground proposals' targets (:func:`weak_mask_targets`).

    Returns:
        (Tensor, dict, Tensor, Tensor): the loss, its diagnostics, gt classes (N,) and valid flags (N,).
    """
    classes, targets, valid, ignore = weak_mask_targets(instances, mask_logits.size(2), ignore_threshold)
    loss, stats = weak_mask_rcnn_loss(mask_logits, classes, targets, valid, ignore, normalization)
    return loss, stats, classes, valid
