"""
The instance subnetwork of WSPS (Li, Arnab & Torr, ECCV 2018, §3.5, Eq. 2-4), after Arnab & Torr's dynamically
instantiated network: a CRF whose labels are the image's detections (plus one whole-image "dummy" detection per
stuff class, score 1), so the number of labels changes from image to image and every pixel takes exactly one.

    E(x) = −Σ_i ln(w1 ψ_Box(x_i) + w2 ψ_Global(x_i) + ε) + Σ_{i<j} ψ_Pairwise(x_i, x_j)          (Eq. 2)
    ψ_Box(X_i = k) = s'_k Q_i(l_k) if i ∈ B_k, else 0                                            (Eq. 3)
    ψ_Global(X_i = k) = Q_i(l_k)                                                                 (Eq. 4)

Q is the semantic subnetwork's (C, h, w) softmax, detection k = (class l_k, score s_k, box B_k). The paper writes
s_k; Arnab & Torr's code uses s'_k = sigmoid(2 s_k − 1) (``score_transform``: "sigmoid", default, or "identity").
The pairwise term is the Gaussian + bilateral CRF with Potts compatibility and one learned scalar weight per kernel
(so any number of labels works), solved by 3 mean-field steps of :func:`wsis.core.meanfield.local_mean_field`
(a local window, differentiable, batched on the device).
"""
import math

import torch
from torch import nn

from wsis.core.meanfield import LocalCRFParams, local_kernel_pair, local_mean_field

__all__ = ["DetectionLabels", "detection_labels", "detection_unary", "InstanceCRF", "WSPS_INSTANCE_CRF"]

#: DESIGN.md's WSPS / DIN kernels: spatial weight 3 (θγ 3), bilateral weight 4 (θα 49, θβ 5), 3 iterations.
WSPS_INSTANCE_CRF = LocalCRFParams(iterations=3, gaussian_weight=3.0, gaussian_xy_std=3.0, bilateral_weight=4.0,
                                   bilateral_xy_std=49.0, bilateral_rgb_std=5.0, window=11)


class DetectionLabels:
    """
    The CRF labels of one image: its D detections, then one dummy whole-image detection per stuff class.

    Attributes:
        boxes (Tensor): (L, 4) x0, y0, x1, y1 in image pixels. classes (Tensor): (L,) long, semantic class of each.
        scores (Tensor): (L,) detection scores (1 for the dummies). is_stuff (Tensor): (L,) bool.
    """

    def __init__(self, boxes, classes, scores, is_stuff):
        self.boxes, self.classes, self.scores, self.is_stuff = boxes, classes, scores, is_stuff

    def __len__(self):
        return int(self.classes.numel())


def detection_labels(boxes, classes, scores, stuff_classes, image_size):
    """
    Args:
        boxes (Tensor): (D, 4) detections' boxes (x0, y0, x1, y1, image pixels). classes: (D,) semantic classes
            (indices into Q's channels). scores: (D,) in [0, 1].
        stuff_classes (sequence[int]): Q's channels of the stuff classes; each becomes a dummy detection.
        image_size (tuple): (H, W) of the image, the dummies' box.

    Returns:
        DetectionLabels
    """
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    classes = torch.as_tensor(classes, dtype=torch.long).reshape(-1)
    scores = torch.as_tensor(scores, dtype=torch.float32).reshape(-1)
    if not len(boxes) == len(classes) == len(scores):
        raise ValueError(f"got {len(boxes)} boxes, {len(classes)} classes and {len(scores)} scores")
    if not torch.isfinite(boxes).all() or not torch.isfinite(scores).all():
        raise ValueError("detection boxes and scores must be finite")
    h, w = image_size
    s = len(stuff_classes)
    return DetectionLabels(
        torch.cat([boxes, torch.tensor([[0.0, 0.0, float(w), float(h)]]).expand(s, 4)]),
        torch.cat([classes, torch.as_tensor(list(stuff_classes), dtype=torch.long)]),
        torch.cat([scores, torch.ones(s)]),
        torch.cat([torch.zeros(len(classes), dtype=torch.bool), torch.ones(s, dtype=torch.bool)]))


def detection_unary(q, labels, stride, w_box, w_global, score_transform="sigmoid", eps=1e-6):
    """
    Unary energies of Eq. 2 for one image.

    Args:
        q (Tensor): (C, h, w) semantic probabilities at stride ``stride``.
        labels (DetectionLabels): L labels; their boxes in image pixels.
        stride (float): image pixels per map pixel (a pixel's centre is (index + 0.5) × stride).
        w_box, w_global (Tensor or float): the weights w1, w2 (≥ 0).
        score_transform (str): "sigmoid" (s' = sigmoid(2s − 1), Arnab & Torr's code) or "identity" (the paper's s).

    Returns:
        Tensor: (L, h, w) U = −ln(w1 ψ_Box + w2 ψ_Global + ε); differentiable in ``q`` and the weights.
    """
    if q.dim() != 3:
        raise ValueError(f"q must be (C, h, w), got {tuple(q.shape)}")
    if not torch.isfinite(q).all():
        raise ValueError("the semantic probabilities Q hold NaN or inf")
    if len(labels) and int(labels.classes.max()) >= q.shape[0]:
        raise ValueError(f"a label's class {int(labels.classes.max())} is not among Q's {q.shape[0]} channels")
    if score_transform not in ("sigmoid", "identity"):
        raise ValueError(f"score_transform must be 'sigmoid' or 'identity', got {score_transform!r}")
    _, h, w = q.shape
    dev, dt = q.device, q.dtype
    ys = (torch.arange(h, device=dev, dtype=dt) + 0.5) * stride
    xs = (torch.arange(w, device=dev, dtype=dt) + 0.5) * stride
    b = labels.boxes.to(dev, dt)
    inside = ((xs.view(1, 1, w) >= b[:, 0, None, None]) & (xs.view(1, 1, w) < b[:, 2, None, None])
              & (ys.view(1, h, 1) >= b[:, 1, None, None]) & (ys.view(1, h, 1) < b[:, 3, None, None]))
    s = labels.scores.to(dev, dt)
    s = torch.sigmoid(2 * s - 1) if score_transform == "sigmoid" else s
    q_l = q[labels.classes.to(dev)]  # (L, h, w): Q_i(l_k)
    psi_box = s.view(-1, 1, 1) * q_l * inside
    return -torch.log(w_box * psi_box + w_global * q_l + eps)


class InstanceCRF(nn.Module):
    """
    The instance CRF as a layer: learned w1, w2 (Eq. 2) and kernel weights, kept positive as exponentials.

    Args:
        params (LocalCRFParams): kernel widths, window, iterations and the initial kernel weights.
        w_box, w_global (float): initial w1, w2. score_transform, eps: see :func:`detection_unary`.
    """

    def __init__(self, params=WSPS_INSTANCE_CRF, w_box=1.0, w_global=1.0, score_transform="sigmoid", eps=1e-6):
        super().__init__()
        self.params = params
        self.score_transform = score_transform
        self.eps = eps
        self.log_w_box = nn.Parameter(torch.tensor(math.log(w_box)))
        self.log_w_global = nn.Parameter(torch.tensor(math.log(w_global)))
        self.log_w_kernels = nn.Parameter(torch.tensor([math.log(params.gaussian_weight),
                                                        math.log(params.bilateral_weight)]))

    def forward(self, q, image, labels, stride):
        """
        Args:
            q (Tensor): (B, C, h, w) semantic probabilities. image (Tensor): (B, 3, h, w) colours (0-255) at the
                same resolution. labels (list[DetectionLabels]): B label sets, each with at least one label.
            stride (float): image pixels per map pixel.

        Returns:
            list[Tensor]: B marginals (L_b, h, w), each summing to 1 over its labels at every pixel.
        """
        if q.dim() != 4 or image.shape[0] != q.shape[0] or image.shape[-2:] != q.shape[-2:] or len(labels) != len(q):
            raise ValueError(f"q (B, C, h, w) {tuple(q.shape)}, image (B, 3, h, w) {tuple(image.shape)} and "
                             f"{len(labels)} label sets do not agree")
        if any(len(lab) == 0 for lab in labels):
            raise ValueError("every image needs at least one label (a detection or a stuff class)")
        b, _, h, w = q.shape
        n = max(len(lab) for lab in labels)
        w_box, w_global = self.log_w_box.exp(), self.log_w_global.exp()
        unary = q.new_zeros(b, n, h, w)
        mask = torch.zeros(b, n, dtype=torch.bool, device=q.device)
        for i, lab in enumerate(labels):
            unary[i, :len(lab)] = detection_unary(q[i], lab, stride, w_box, w_global, self.score_transform, self.eps)
            mask[i, :len(lab)] = True
        gauss, bilat = local_kernel_pair(image.to(q.dtype), stride, self.params)
        wk = self.log_w_kernels.exp()
        kernels = wk[0] * gauss + wk[1] * bilat
        marginals = local_mean_field(unary, kernels, self.params.iterations, self.params.window, mask)
        return [marginals[i, :len(lab)] for i, lab in enumerate(labels)]
