"""
The image-tag classifier's loss (IRNet §3, the official ``train_cam.py``: ``F.multilabel_soft_margin_loss``), as pure
functions of tensors.

An image contributes through its multi-hot target row y ∈ {0, 1}^K (:func:`tags_to_targets`). An image without any
tag is all background; whether it gives a loss (every class a negative) or none is the caller's choice, expressed by
``valid`` (the ``CAMClassifier`` passes valid = "has at least one tag" unless configured otherwise).
"""
import torch
import torch.nn.functional as F

__all__ = ["tags_to_targets", "multilabel_soft_margin_loss"]


def tags_to_targets(image_labels, num_classes, where=None):
    """
    Multi-hot targets of image tags.

    Args:
        image_labels (list[list[int]]): the contiguous class ids tagged in each of N images (repeats are allowed).
        num_classes (int): K.
        where (list[str] or None): a description of each image for error messages (e.g. ``"a.jpg (image id 7)"``).

    Returns:
        Tensor: (N, K) float32, 1 where image i is tagged with class c, else 0 (on the CPU).

    Raises:
        ValueError: for a class id outside 0..K-1, naming ``where[i]`` (or the index i).
    """
    num_classes = int(num_classes)
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if where is not None and len(where) != len(image_labels):
        raise ValueError(f"got {len(where)} image descriptions for {len(image_labels)} images")
    targets = torch.zeros((len(image_labels), num_classes), dtype=torch.float32)
    for i, labels in enumerate(image_labels):
        ids = [int(c) for c in labels]
        bad = [c for c in ids if not 0 <= c < num_classes]
        if bad:
            name = where[i] if where is not None else f"image {i} of the batch"
            raise ValueError(f"{name}: image label(s) {bad} outside the {num_classes} classes 0..{num_classes - 1}")
        if ids:
            targets[i, ids] = 1.0
    return targets


def multilabel_soft_margin_loss(logits, targets, valid=None):
    """
    Multi-label soft-margin loss over the valid images:

        L = 1/|V| Σ_{i ∈ V} 1/K Σ_c −[y_ic log σ(x_ic) + (1 − y_ic) log σ(−x_ic)],

    equal to ``F.multilabel_soft_margin_loss(logits[valid], targets[valid])`` (IRNet's training loss).

    Args:
        logits (Tensor): (N, K) classification logits x.
        targets (Tensor): (N, K) targets y in [0, 1] (multi-hot from :func:`tags_to_targets`).
        valid (Tensor or None): (N,) bool, the images that give a loss (default: all).

    Returns:
        Tensor: scalar. With no valid image (or N = 0) ``logits.sum() * 0``: a zero that is connected to the graph.

    Raises:
        FloatingPointError: if any logit is NaN or infinite (the caller adds which image).
    """
    if logits.dim() != 2 or tuple(targets.shape) != tuple(logits.shape):
        raise ValueError(f"logits and targets must both be (N, K), got {tuple(logits.shape)} and "
                         f"{tuple(targets.shape)}")
    if not bool(torch.isfinite(logits).all()):
        rows = (~torch.isfinite(logits).all(dim=1)).nonzero()[:, 0].tolist()
        raise FloatingPointError(f"non-finite classifier logits in batch row(s) {rows}")
    targets = targets.to(dtype=logits.dtype, device=logits.device)
    if valid is not None:
        valid = torch.as_tensor(valid, dtype=torch.bool, device=logits.device)
        if tuple(valid.shape) != (logits.shape[0],):
            raise ValueError(f"valid must be ({logits.shape[0]},) bool, got shape {tuple(valid.shape)}")
        if not bool(valid.any()):
            return logits.sum() * 0
        logits, targets = logits[valid], targets[valid]
    if logits.numel() == 0:
        return logits.sum() * 0
    per_class = -(targets * F.logsigmoid(logits) + (1 - targets) * F.logsigmoid(-logits))  # (N', K)
    return per_class.mean(dim=1).mean()
