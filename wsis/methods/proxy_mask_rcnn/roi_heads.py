"""Mask head of "Proxy Mask R-CNN": Mask R-CNN's head whose loss honours invalid masks and ignore regions."""
from typing import List

from detectron2.config import configurable
from detectron2.modeling.roi_heads.mask_head import (
    ROI_MASK_HEAD_REGISTRY,
    MaskRCNNConvUpsampleHead,
    mask_rcnn_inference,
)
from detectron2.structures import Instances
from detectron2.utils.events import get_event_storage

from .losses import valid_mask_loss

__all__ = ["ProxyMaskRCNNConvUpsampleHead"]


@ROI_MASK_HEAD_REGISTRY.register()
class ProxyMaskRCNNConvUpsampleHead(MaskRCNNConvUpsampleHead):
    """
    ``MaskRCNNConvUpsampleHead`` trained by :func:`wsis.methods.proxy_mask_rcnn.losses.weak_mask_rcnn_loss`: instances whose
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
        loss, stats, classes, valid = valid_mask_loss(x, instances, self.ignore_threshold, self.loss_normalization)
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
