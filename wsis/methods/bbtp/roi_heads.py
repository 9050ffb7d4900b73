"""
Mask head trained from boxes: BBTP's MIL loss (Hsu et al., NeurIPS 2019) or BoxInst's projection + colour-affinity
loss (Tian et al., CVPR 2021) for box-only instances, and Mask R-CNN's BCE for instances with a (pseudo) mask, in the
same batch (mixed supervision, WSPS §4.2).
"""
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

from .losses import (
    box_to_grid_mask,
    color_similarity,
    mil_bag_loss,
    mil_pairwise_loss,
    pairwise_color_loss,
    projection_loss,
    warmup_factor,
)
from wsis.methods.proxy_mask_rcnn.losses import select_class_logits, valid_mask_loss

__all__ = ["BoxSupervisedMaskRCNNConvUpsampleHead"]


@ROI_MASK_HEAD_REGISTRY.register()
class BoxSupervisedMaskRCNNConvUpsampleHead(MaskRCNNConvUpsampleHead):
    """
    ``MaskRCNNConvUpsampleHead`` whose loss uses each proposal's matched GT box when the instance has no valid mask:

    * ``LOSS: "mil"`` (BBTP): ``loss_mil`` = BCE on the maxima of row/column bags of the proposal's grid, positive iff
      the bag crosses the projected GT box; ``loss_mil_pairwise`` = 0.05 · mean (p_i − p_j)² over 8-neighbours.
    * ``LOSS: "boxinst"``: ``loss_projection`` = Dice of max-projections on x and y; ``loss_color_pairwise`` =
      −log P(y_i = y_j) on colour-similar edges inside the box, linearly warmed up. Needs ``gt_image_lab``
      (``WeakDatasetMapper`` attaches it when this loss is configured).

    Instances with ``gt_mask_valid`` get ``loss_mask`` (Mask R-CNN's BCE, ignore regions honoured). Class-specific
    or class-agnostic (``CLS_AGNOSTIC_MASK``). Select with ``MODEL.ROI_MASK_HEAD.NAME:
    "BoxSupervisedMaskRCNNConvUpsampleHead"``.
    """

    @configurable
    def __init__(self, input_shape, *, box_loss="mil", mil_weight=1.0, mil_positive_within_box=False,
                 mil_pairwise_weight=0.05, projection_weight=1.0, color_pairwise_weight=1.0, color_threshold=0.3,
                 color_kernel_size=3, color_dilation=2, color_warmup_iters=10000, loss_normalization="pixels",
                 ignore_threshold=0.5, **kwargs):
        super().__init__(input_shape, **kwargs)
        self.loss_normalization = loss_normalization
        self.ignore_threshold = ignore_threshold
        if box_loss not in ("mil", "boxinst"):
            raise ValueError(f"MODEL.ROI_MASK_HEAD.BOX_SUPERVISION.LOSS must be 'mil' or 'boxinst', got {box_loss!r}")
        self.box_loss = box_loss
        self.mil_weight = mil_weight
        self.mil_positive_within_box = mil_positive_within_box
        self.mil_pairwise_weight = mil_pairwise_weight
        self.projection_weight = projection_weight
        self.color_pairwise_weight = color_pairwise_weight
        self.color_threshold = color_threshold
        self.color_kernel_size = color_kernel_size
        self.color_dilation = color_dilation
        self.color_warmup_iters = color_warmup_iters

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        bs = cfg.MODEL.ROI_MASK_HEAD.BOX_SUPERVISION
        ret.update(
            box_loss=bs.LOSS, mil_weight=bs.MIL_WEIGHT, mil_positive_within_box=bs.MIL_POSITIVE_WITHIN_BOX,
            mil_pairwise_weight=bs.MIL_PAIRWISE_WEIGHT, projection_weight=bs.PROJECTION_WEIGHT,
            color_pairwise_weight=bs.COLOR_PAIRWISE_WEIGHT, color_threshold=bs.COLOR_THRESHOLD,
            color_kernel_size=bs.COLOR_KERNEL_SIZE, color_dilation=bs.COLOR_DILATION,
            color_warmup_iters=bs.COLOR_WARMUP_ITERS, loss_normalization=cfg.MODEL.ROI_MASK_HEAD.LOSS_NORMALIZATION,
            ignore_threshold=cfg.MODEL.ROI_MASK_HEAD.IGNORE_THRESHOLD,
        )
        return ret

    def box_losses(self, logits, gt_boxes, proposal_boxes, lab_patches=None, iteration=0):
        """
        Args:
            logits (Tensor): (N, M, M) mask logits of each box-only proposal's class.
            gt_boxes, proposal_boxes (Tensor): (N, 4) XYXY matched GT boxes and proposals.
            lab_patches (Tensor or None): (N, 3, M, M) ROI-aligned Lab colours (BoxInst only).

        Returns:
            dict[str, Tensor]: the weighted box-supervised loss terms.
        """
        box_mask = box_to_grid_mask(gt_boxes, proposal_boxes, logits.size(-1))
        if self.box_loss == "mil":
            return {
                "loss_mil": self.mil_weight * mil_bag_loss(logits, box_mask, self.mil_positive_within_box),
                "loss_mil_pairwise": self.mil_pairwise_weight * mil_pairwise_loss(logits),
            }
        losses = {"loss_projection": self.projection_weight * projection_loss(logits, box_mask)}
        if lab_patches is None:
            raise ValueError("BoxInst's colour pairwise loss needs gt_image_lab; train with WeakDatasetMapper")
        sim = color_similarity(lab_patches, self.color_kernel_size, self.color_dilation)
        warm = warmup_factor(iteration, self.color_warmup_iters)
        losses["loss_color_pairwise"] = self.color_pairwise_weight * warm * pairwise_color_loss(
            logits, sim, box_mask, self.color_threshold, self.color_dilation
        )
        return losses

    def forward(self, x, instances: List[Instances]):
        x = self.layers(x)
        if not self.training:
            mask_rcnn_inference(x, instances)
            return instances
        m = x.size(2)
        loss, stats, classes, valid = valid_mask_loss(x, instances, self.ignore_threshold, self.loss_normalization)
        losses = {"loss_mask": loss * self.loss_weight}
        storage = get_event_storage()
        for k, v in stats.items():
            storage.put_scalar(f"mask_rcnn/{k}", v)
        weak = ~valid
        storage.put_scalar("mask_rcnn/num_box_only", float(weak.sum()))
        logits = select_class_logits(x, classes)[weak]
        gt_boxes = torch.cat([i.gt_boxes.tensor for i in instances])[weak] if instances else x.new_zeros(0, 4)
        proposals = torch.cat([i.proposal_boxes.tensor for i in instances])[weak] if instances else x.new_zeros(0, 4)
        lab = None
        if self.box_loss == "boxinst" and all(i.has("gt_image_lab") for i in instances) and instances:
            lab = torch.cat([i.gt_image_lab.crop_and_resize(i.proposal_boxes.tensor, m) for i in instances])[weak]
        for k, v in self.box_losses(logits, gt_boxes, proposals, lab, storage.iter).items():
            losses[k] = v * self.loss_weight
        return losses
