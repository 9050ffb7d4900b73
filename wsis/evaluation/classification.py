"""
Multi-label image classification metrics (the CAM classifier's test metrics): per-class average precision and its
mean (mAP, VOC's classification measure), and micro / macro F1 at a score threshold. Pure NumPy; every result is a
plain float in [0, 1] (not percent), and an empty input gives zeros, never NaN.
"""
from typing import Dict, Optional, Sequence

import numpy as np

from .ap_r import average_precision as ranked_average_precision

__all__ = ["class_average_precision", "multilabel_metrics"]


def _numpy(x):
    if hasattr(x, "detach"):  # a torch tensor, on any device
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def class_average_precision(scores, targets) -> float:
    """
    Average precision of one class over images, VOC's classification measure (VOCevalcls): the images ranked by
    decreasing score (**ties broken stably by input order**), then :func:`wsis.evaluation.ap_r.average_precision`
    with ``"voc"`` interpolation (the area under the precision envelope) — the same ranked-list AP as AP^r.

    Args:
        scores: (N,) scores. targets: (N,) {0, 1} (or bool).

    Returns:
        float: AP in [0, 1]; 0.0 when there is no positive (undefined; :func:`multilabel_metrics` leaves such classes
        out of the mAP).
    """
    scores = _numpy(scores).astype(np.float64).reshape(-1)
    targets = _numpy(targets).reshape(-1)
    if scores.shape != targets.shape:
        raise ValueError(f"scores and targets must have one shape, got {scores.shape} and {targets.shape}")
    if np.isnan(scores).any():
        raise ValueError("class_average_precision got NaN scores")
    positive = targets.astype(bool)[np.argsort(-scores, kind="stable")]
    if not positive.any():
        return 0.0
    return float(ranked_average_precision(positive, int(positive.sum()), interpolation="voc"))


def multilabel_metrics(scores, targets, threshold: float = 0.5,
                       class_names: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """
    Args:
        scores: (N, K) class probabilities (sigmoid of the logits). targets: (N, K) {0, 1} multi-hot tags.
        threshold: a class is predicted when its score is ≥ ``threshold``.
        class_names: K names for the ``AP-<name>`` entries (default: the class index).

    Returns:
        dict:
        - ``mAP``: mean of :func:`class_average_precision` over the classes with at least one positive;
        - ``AP-<name>``: the AP of each such class (classes without a positive get no entry);
        - ``precision``, ``recall``, ``F1``: micro-averaged over all (image, class) decisions,
          P = TP/(TP + FP), R = TP/(TP + FN), F1 = 2TP/(2TP + FP + FN);
        - ``F1_macro``: mean of the per-class 2TP/(2TP + FP + FN) over the classes with a positive or a prediction;
        - ``num_images``.
        An undefined ratio is 0.0 (no image, no positive, no prediction).
    """
    scores, targets = _numpy(scores).astype(np.float64), _numpy(targets)
    if scores.size == 0 and targets.size == 0 and scores.ndim < 2:  # [] (no image at all)
        scores, targets = scores.reshape(0, 0), targets.reshape(0, 0)
    if scores.ndim != 2 or scores.shape != targets.shape:
        raise ValueError(f"scores and targets must both be (N, K), got {scores.shape} and {targets.shape}")
    n, k = scores.shape
    if class_names is not None and len(class_names) != k:
        raise ValueError(f"got {len(class_names)} class names for {k} classes")
    names = [str(c) for c in (class_names if class_names is not None else range(k))]
    truth = targets.astype(bool)
    pred = scores >= threshold
    tp = (pred & truth).sum(0)
    fp = (pred & ~truth).sum(0)
    fn = (~pred & truth).sum(0)
    res = {}
    aps = []
    for c in np.flatnonzero(truth.any(0)):
        ap = class_average_precision(scores[:, c], truth[:, c])
        res[f"AP-{names[c]}"] = ap
        aps.append(ap)
    TP, FP, FN = int(tp.sum()), int(fp.sum()), int(fn.sum())
    denom = 2 * tp + fp + fn
    per_class_f1 = 2 * tp[denom > 0] / denom[denom > 0]
    res.update({
        "mAP": float(np.mean(aps)) if aps else 0.0,
        "F1": 2 * TP / (2 * TP + FP + FN) if 2 * TP + FP + FN else 0.0,
        "F1_macro": float(per_class_f1.mean()) if per_class_f1.size else 0.0,
        "precision": TP / (TP + FP) if TP + FP else 0.0,
        "recall": TP / (TP + FN) if TP + FN else 0.0,
    })
    res = {key: float(v) for key, v in res.items()}
    res["num_images"] = int(n)
    return res
