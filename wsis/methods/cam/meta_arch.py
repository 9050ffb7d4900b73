"""
``CAMClassifier``: the image-tag classifier of IRNet §3 (and WSPS §3.3) as a detectron2 meta-architecture, with its
localisation cues (CAM, Grad-CAM) for the cue store.
"""
import logging

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.structures import ImageList
from torch import nn

from .head import CAMHead
from .localization import grad_cam, multiscale_cams, strided_size
from .losses import multilabel_soft_margin_loss, tags_to_targets

__all__ = ["CAMClassifier"]
logger = logging.getLogger(__name__)

CUES = ("cam", "gradcam")


@META_ARCH_REGISTRY.register()
class CAMClassifier(nn.Module):
    """
    backbone → ``in_feature`` (N, C, h, w) → :class:`CAMHead` (GAP + 1×1 conv without bias) → logits (N, K), trained
    with the multilabel soft-margin loss on each input's ``"image_labels"``.

    Training returns ``{"loss_cls": scalar}``; inference returns, per image, ``{"image_scores": (K,) sigmoid
    scores}``. :meth:`cues` gives an image's localisation maps (multi-scale + flip, ReLU, max-normalised).
    """

    @configurable
    def __init__(self, *, backbone, in_feature, num_classes, pixel_mean, pixel_std, untagged="skip",
                 classifier_lr_multiplier=10.0, cue="cam", scales=(1.0,), flip=False, cue_stride=4):
        super().__init__()
        if untagged not in ("skip", "negative"):
            raise ValueError(f"MODEL.CAM.UNTAGGED must be 'skip' or 'negative', got {untagged!r}")
        if cue not in CUES:
            raise ValueError(f"MODEL.CAM.CUE must be one of {CUES}, got {cue!r}")
        self.backbone = backbone
        self.in_feature = in_feature
        channels = backbone.output_shape()[in_feature].channels
        self.head = CAMHead(channels, num_classes)
        self.num_classes = num_classes
        self.untagged = untagged
        self.classifier_lr_multiplier = float(classifier_lr_multiplier)
        self.cue, self.scales, self.flip, self.cue_stride = cue, tuple(scales), bool(flip), int(cue_stride)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg):
        c = cfg.MODEL.CAM
        return {"backbone": build_backbone(cfg), "in_feature": c.IN_FEATURE, "num_classes": c.NUM_CLASSES,
                "pixel_mean": cfg.MODEL.PIXEL_MEAN, "pixel_std": cfg.MODEL.PIXEL_STD, "untagged": c.UNTAGGED,
                "classifier_lr_multiplier": c.CLASSIFIER_LR_MULTIPLIER, "cue": c.CUE, "scales": c.SCALES,
                "flip": c.FLIP, "cue_stride": c.CUE_STRIDE}

    @property
    def device(self):
        return self.pixel_mean.device

    def lr_factor(self, name):
        """The learning-rate factor of parameter ``name`` (:class:`wsis.engine.WSISTrainer` asks): the classifier's
        ``CLASSIFIER_LR_MULTIPLIER``, 1 for the backbone."""
        return self.classifier_lr_multiplier if name.startswith("head.") else 1.0

    def _normalize(self, image):
        return (image.to(self.device).float() - self.pixel_mean) / self.pixel_std

    def features(self, images):
        """(N, 3, H, W) normalised images → the (N, C, h, w) ``in_feature`` map."""
        return self.backbone(images)[self.in_feature]

    def forward(self, batched_inputs):
        images = ImageList.from_tensors([self._normalize(x["image"]) for x in batched_inputs],
                                        self.backbone.size_divisibility)
        logits = self.head(self.features(images.tensor))
        where = [f"{x.get('file_name')} (image id {x.get('image_id')})" for x in batched_inputs]
        if not torch.isfinite(logits).all():
            bad = [w for w, ok in zip(where, torch.isfinite(logits).all(1).tolist()) if not ok]
            raise FloatingPointError(f"non-finite classifier logits for {', '.join(bad)}")
        if not self.training:
            return [{"image_scores": s} for s in logits.sigmoid()]
        labels = [x.get("image_labels", []) for x in batched_inputs]
        targets = tags_to_targets(labels, self.num_classes, where=where).to(logits.device)
        valid = None
        if self.untagged == "skip":
            valid = torch.tensor([len(lab) > 0 for lab in labels], dtype=torch.bool, device=logits.device)
        return {"loss_cls": multilabel_soft_margin_loss(logits, targets, valid)}

    def cues(self, image, classes, method=None, scales=None, flip=None):
        """
        Localisation maps of ``classes`` in one image, at ``cue_stride``.

        Args:
            image (Tensor): (3, H, W) in the input format (as the mapper gives it). classes (list[int]): contiguous
                class ids (M of them). method: "cam" or "gradcam" (default ``MODEL.CAM.CUE``); scales, flip: default
                ``MODEL.CAM.SCALES``/``FLIP``.

        Returns:
            Tensor: (M, ceil(H / stride), ceil(W / stride)) float32 in [0, 1] (IRNet's fusion: per view ReLU,
            summed over scales and flips, each class divided by its max + 1e-5).
        """
        method = method or self.cue
        if method not in CUES:
            raise ValueError(f"cue method must be one of {CUES}, got {method!r}")
        classes = [int(c) for c in classes]
        h, w = strided_size(image.shape[-2], image.shape[-1], self.cue_stride)
        if not classes:
            return torch.zeros((0, h, w))
        weight = self.head.classifier.weight[classes]

        def compute(batch):  # (B, 3, H_s, W_s) -> (B, M, h_s, w_s)
            if method == "cam":
                return F.conv2d(self.features(batch), weight)
            feats = self.features(batch)  # (no graph through the backbone: the gradient is wrt the features)
            with torch.enable_grad():
                feats = feats.detach().requires_grad_(True)
                return grad_cam(feats, self.head(feats)[:, classes]).detach()

        with torch.no_grad():
            return multiscale_cams(compute, self._normalize(image),
                                   scales=self.scales if scales is None else tuple(scales),
                                   flip=self.flip if flip is None else bool(flip), out_size=(h, w)).cpu()
