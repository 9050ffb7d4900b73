"""``PSPSemSegHead``: PSPNet's pyramid pooling (Zhao et al., CVPR 2017) on one backbone feature, the semantic
subnetwork of WSPS's panoptic model (§3.5: "any semantic segmentation network"; the paper's is PSPNet)."""
from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from detectron2.config import configurable
from detectron2.layers import Conv2d, ShapeSpec, get_norm
from detectron2.modeling import SEM_SEG_HEADS_REGISTRY

__all__ = ["PSPSemSegHead"]


@SEM_SEG_HEADS_REGISTRY.register()
class PSPSemSegHead(nn.Module):
    """
    The feature ``MODEL.SEM_SEG_HEAD.IN_FEATURES[0]`` (C_in, h, w), average-pooled to b × b for each of
    ``MODEL.PSP_HEAD.BINS``, each reduced by a 1×1 conv, upsampled back and concatenated with it; a 3×3 conv, dropout
    and a 1×1 classifier give (NUM_CLASSES, h, w) logits at the feature's stride (``common_stride``).

    The interface of detectron2's ``SemSegFPNHead``: ``forward(features, targets)`` (training: ``(None, losses)``;
    inference: logits upsampled to the input, ``{}``), ``layers(features)`` (logits at ``common_stride``) and
    ``losses(logits, targets)`` (cross-entropy with ``ignore_value``, finite on an all-ignore batch), so it serves
    ``SemanticSegmentor`` and ``WSPSPanopticNetwork`` alike.
    """

    @configurable
    def __init__(self, input_shape: Dict[str, ShapeSpec], *, num_classes, bins=(1, 2, 3, 6), channels=128,
                 dropout=0.1, norm="GN", loss_weight=1.0, ignore_value=255):
        super().__init__()
        if len(input_shape) != 1:
            raise ValueError(f"PSPSemSegHead reads one feature, got {list(input_shape)}")
        (self.in_feature, shape), = input_shape.items()
        self.common_stride = shape.stride
        self.num_classes = num_classes
        self.ignore_value = ignore_value
        self.loss_weight = loss_weight
        self.bins = tuple(int(b) for b in bins)

        # no norm on the pooled branches: a group or batch norm of a 1 × 1 bin normalises a handful of values
        self.stages = nn.ModuleList(Conv2d(shape.channels, channels, 1, activation=F.relu) for _ in self.bins)
        self.bottleneck = Conv2d(shape.channels + len(self.bins) * channels, channels, 3, padding=1, bias=not norm,
                                 norm=get_norm(norm, channels), activation=F.relu)
        self.dropout = nn.Dropout2d(dropout)
        self.predictor = Conv2d(channels, num_classes, 1)
        nn.init.normal_(self.predictor.weight, 0, 0.001)
        nn.init.constant_(self.predictor.bias, 0)

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        c = cfg.MODEL.SEM_SEG_HEAD
        if len(c.IN_FEATURES) != 1:
            raise ValueError(f"PSPSemSegHead reads one feature; MODEL.SEM_SEG_HEAD.IN_FEATURES is {c.IN_FEATURES}")
        return {"input_shape": {k: v for k, v in input_shape.items() if k in c.IN_FEATURES},
                "num_classes": c.NUM_CLASSES, "bins": cfg.MODEL.PSP_HEAD.BINS, "channels": cfg.MODEL.PSP_HEAD.CHANNELS,
                "dropout": cfg.MODEL.PSP_HEAD.DROPOUT, "norm": c.NORM, "loss_weight": c.LOSS_WEIGHT,
                "ignore_value": c.IGNORE_VALUE}

    def layers(self, features):
        """features (dict[str, Tensor]) → (B, NUM_CLASSES, h, w) logits at ``common_stride``."""
        x = features[self.in_feature]
        size = x.shape[-2:]
        pooled = [F.interpolate(stage(F.adaptive_avg_pool2d(x, b)), size=size, mode="bilinear", align_corners=False)
                  for b, stage in zip(self.bins, self.stages)]
        return self.predictor(self.dropout(self.bottleneck(torch.cat([x] + pooled, dim=1))))

    def forward(self, features, targets=None):
        x = self.layers(features)
        if self.training:
            return None, self.losses(x, targets)
        return F.interpolate(x, scale_factor=self.common_stride, mode="bilinear", align_corners=False), {}

    def losses(self, predictions, targets):
        """predictions: (B, C, h, w) at ``common_stride``; targets: (B, H, W) long, ``ignore_value`` ignored."""
        predictions = F.interpolate(predictions.float(), size=targets.shape[-2:], mode="bilinear",
                                    align_corners=False)
        if not (targets != self.ignore_value).any():
            return {"loss_sem_seg": predictions.sum() * 0.0}
        loss = F.cross_entropy(predictions, targets, reduction="mean", ignore_index=self.ignore_value)
        return {"loss_sem_seg": loss * self.loss_weight}
