"""Mask head of "Proxy Mask R-CNN": Mask R-CNN's head whose loss honours invalid masks and ignore regions."""
from typing import List

import torch
from detectron2.config import configurable
from detectron2.modeling.roi_heads.mask_head import (
    ROI_MASK_HEAD_REGISTRY,
    MaskRCNNConvUpsampleHead,
    mask_rcnn_inference,
)
from detectron2.structures import Instances
from detectron2.utils.events import get_event_storage

from ..losses import weak_mask_rcnn_loss

__all__ = ["ProxyMaskRCNNConvUpsampleHead", "weak_mask_targets"]


def weak_mask_targets(instances: List[Instances], mask_size: int, ignore_threshold: float = 0.5):
    """
    Gather per-proposal targets from sampled foreground proposals (``label_and_sample_proposals`` copies every
    ``gt_*`` field of the matched ground truth onto them).

    Returns:
        gt_classes (N,), gt_masks (N, M, M) float, valid (N,) bool, ignore (N, M, M) bool or None.
        Instances without ``gt_masks`` (box-only data) are invalid; without ``gt_mask_valid`` a present mask is
        valid; ``gt_ignore`` (an :class:`wsis.structures.PerImageField`) marks pixels that give no loss.
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


@ROI_MASK_HEAD_REGISTRY.register()
class ProxyMaskRCNNConvUpsampleHead(MaskRCNNConvUpsampleHead):
    """
    ``MaskRCNNConvUpsampleHead`` trained by :func:`wsis.modeling.losses.weak_mask_rcnn_loss`: instances whose
    ``gt_mask_valid`` is False (dropped proxy masks, box-only instances) and pixels in ``gt_ignore`` give no mask
    loss, while box and class losses are unaffected. Inference is Mask R-CNN's.

    Select it with ``MODEL.ROI_MASK_HEAD.NAME: "ProxyMaskRCNNConvUpsampleHead"``.
    """

    @configurable
    def __init__(self, input_shape, *, loss_normalization="pixels", ignore_threshold=0.5, **kwargs):
        super().__init__(input_shape, **kwargs)
        self.loss_normalization = loss_normalization
        self.ignore_threshold = ignore_threshold

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        ret["loss_normalization"] = cfg.MODEL.ROI_MASK_HEAD.LOSS_NORMALIZATION
        ret["ignore_threshold"] = cfg.MODEL.ROI_MASK_HEAD.IGNORE_THRESHOLD
        return ret

    def valid_mask_loss(self, x, instances: List[Instances]):
        """
        Mask R-CNN's BCE over instances with a valid mask, outside ignore regions; diagnostics to EventStorage.

        Returns:
            (dict, Tensor, Tensor): ``{"loss_mask": ...}``, gt classes (N,) and valid flags (N,) of the proposals.
        """
        classes, targets, valid, ignore = weak_mask_targets(instances, x.size(2), self.ignore_threshold)
        loss, stats = weak_mask_rcnn_loss(x, classes, targets, valid, ignore, self.loss_normalization)
        storage = get_event_storage()
        for k, v in stats.items():
            storage.put_scalar(f"mask_rcnn/{k}", v)
        return {"loss_mask": loss * self.loss_weight}, classes, valid

    def forward(self, x, instances: List[Instances]):
        x = self.layers(x)
        if not self.training:
            mask_rcnn_inference(x, instances)
            return instances
        return self.valid_mask_loss(x, instances)[0]
