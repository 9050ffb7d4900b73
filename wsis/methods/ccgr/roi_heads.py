"""
``WSDDNBagROIHeads``: CCGR's MIL branch as a detectron2 ROI head ("Multiple instance learning branch"; WSDDN,
Bilen & Vedaldi 2016), fed by precomputed bag proposals (:class:`~.mapper.CCGRBagMapper`).
"""
import torch
from torch import nn

from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import ROI_HEADS_REGISTRY
from detectron2.modeling.poolers import ROIPooler
from detectron2.modeling.roi_heads.box_head import build_box_head
from detectron2.structures import Boxes, Instances

from .losses import wsddn_bag_loss, wsddn_bag_scores, wsddn_contributions

__all__ = ["WSDDNBagROIHeads"]


@ROI_HEADS_REGISTRY.register()
class WSDDNBagROIHeads(nn.Module):
    """
    ROIAlign features of every bag proposal (``MODEL.ROI_BOX_HEAD``'s pooler and box head), then two linear
    streams x^cls, x^det (N, C). Training: ``loss_mil``, WSDDN's bag loss (:func:`~.losses.wsddn_bag_loss`) summed
    over an image's bags and averaged over the images. Inference: per bag the proposal whose contribution
    softmax_c(x^cls) · softmax_bag(x^det) to its class is largest, as ``pred_boxes`` with ``pred_classes`` the bag's
    class and ``scores`` the bag's score φ_B(c) (the "MIL boxes" that CCGR refines). Needs
    ``MODEL.PROPOSAL_GENERATOR.NAME "PrecomputedProposals"``.
    """

    @configurable
    def __init__(self, *, in_features, pooler, box_head, num_classes):
        super().__init__()
        self.in_features, self.pooler, self.box_head = in_features, pooler, box_head
        self.num_classes = num_classes
        dim = box_head.output_shape.channels
        self.cls_score = nn.Linear(dim, num_classes)
        self.det_score = nn.Linear(dim, num_classes)
        for layer in (self.cls_score, self.det_score):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, 0)

    @classmethod
    def from_config(cls, cfg, input_shape):
        in_features = list(cfg.MODEL.ROI_HEADS.IN_FEATURES)
        c = cfg.MODEL.ROI_BOX_HEAD
        channels = {input_shape[f].channels for f in in_features}
        if len(channels) != 1:
            raise ValueError(f"the ROI features {in_features} must have one channel count, got {channels}")
        pooler = ROIPooler(output_size=c.POOLER_RESOLUTION, scales=[1.0 / input_shape[f].stride for f in in_features],
                           sampling_ratio=c.POOLER_SAMPLING_RATIO, pooler_type=c.POOLER_TYPE)
        box_head = build_box_head(cfg, ShapeSpec(channels=channels.pop(), height=c.POOLER_RESOLUTION,
                                                 width=c.POOLER_RESOLUTION))
        return {"in_features": in_features, "pooler": pooler, "box_head": box_head,
                "num_classes": cfg.MODEL.ROI_HEADS.NUM_CLASSES}

    def forward(self, images, features, proposals, targets=None):
        x = self.box_head(self.pooler([features[f] for f in self.in_features], [p.proposal_boxes for p in proposals]))
        cls_logits, det_logits = self.cls_score(x), self.det_score(x)
        counts = [len(p) for p in proposals]
        parts = list(zip(proposals, cls_logits.split(counts), det_logits.split(counts)))
        if self.training:
            losses = [wsddn_bag_loss(cls, det, p.bag_index, bag_labels(p)) for p, cls, det in parts]
            return proposals, {"loss_mil": torch.stack(losses).mean() if losses else x.sum() * 0}
        return [self._bag_boxes(p, cls, det) for p, cls, det in parts], {}

    @staticmethod
    def _bag_boxes(p, cls, det):
        out = Instances(p.image_size)
        labels = bag_labels(p)
        boxes, scores = cls.new_zeros((len(labels), 4)), cls.new_zeros(len(labels))
        if len(labels):
            phi = wsddn_bag_scores(cls, det, p.bag_index, len(labels))  # (B, C)
            share = wsddn_contributions(cls, det, p.bag_index, len(labels))  # each proposal's part of φ_B
            contribution = share.gather(1, labels[p.bag_index].view(-1, 1)).flatten()
            for b in range(len(labels)):
                members = torch.nonzero(p.bag_index == b).flatten()
                boxes[b] = p.proposal_boxes.tensor[members[contribution[members].argmax()]]
            scores = phi.gather(1, labels.view(-1, 1)).flatten()
        out.pred_boxes, out.pred_classes, out.scores = Boxes(boxes), labels, scores
        return out


def bag_labels(proposals):
    """(B,) class of each bag of an image's proposals (their ``bag_index`` and ``bag_class`` fields)."""
    if len(proposals) == 0:
        return torch.zeros(0, dtype=torch.long, device=proposals.bag_index.device)
    b = int(proposals.bag_index.max()) + 1
    return torch.zeros(b, dtype=torch.long, device=proposals.bag_index.device).scatter_(
        0, proposals.bag_index, proposals.bag_class)
