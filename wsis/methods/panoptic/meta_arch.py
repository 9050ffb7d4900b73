"""
``WSPSPanopticNetwork``: WSPS's panoptic model (Li, Arnab & Torr, ECCV 2018, §3.5, Fig. 5), after Arnab & Torr's
dynamically instantiated network: a semantic subnetwork gives Q, a detector gives D detections, and the instance
CRF (:class:`~wsis.methods.panoptic.instance_crf.InstanceCRF`) labels every pixel with one of them or with one of
the dummy whole-image stuff detections; its output is non-overlapping by construction.
"""
import torch
import torch.nn.functional as F
from torch import nn

from detectron2.config import configurable
from detectron2.modeling import (META_ARCH_REGISTRY, build_backbone, build_proposal_generator, build_roi_heads,
                                 build_sem_seg_head)
from detectron2.structures import BitMasks, Boxes, ImageList, Instances

from wsis.core.config import node_to_kwargs
from wsis.core.meanfield import LocalCRFParams

from .instance_crf import InstanceCRF, detection_labels
from .losses import matched_instance_loss
from .segments import owner_at_output, panoptic_from_owner, resize_to_output

__all__ = ["WSPSPanopticNetwork"]


@META_ARCH_REGISTRY.register()
class WSPSPanopticNetwork(nn.Module):
    """
    Backbone → semantic head (``MODEL.SEM_SEG_HEAD``, any head with ``layers``/``losses``, e.g. ``PSPSemSegHead``)
    → Q (B, C, h, w); backbone → ``MODEL.PROPOSAL_GENERATOR`` + ``MODEL.ROI_HEADS`` (boxes only) → detections of the
    T = ``MODEL.ROI_HEADS.NUM_CLASSES`` thing classes (Q's channels 0..T−1); Q, the image and the detections + one
    dummy per stuff class (channels T..C−1, score 1) → the instance CRF at ``MODEL.WSPS_PANOPTIC.CRF_STRIDE``.

    Training (inputs from :class:`~wsis.methods.panoptic.mapper.PanopticLabelMapper`): ``loss_sem_seg`` (the
    head's cross-entropy on ``sem_seg``), the detector's losses on the thing boxes and, with ``TRAIN_INSTANCE_CRF``
    (the second stage), ``loss_instance_crf``: the matched cross-entropy of the CRF's marginals against ``pan_seg``
    (§3.5), backpropagated into the CRF's weights, the semantic head and the backbone, not into the detections.

    Inference: per image ``{"panoptic_seg": (ids (H, W) int32, segments_info), "sem_seg": (C, H, W) Q,
    "instances": the thing segments as masks}``, at the input's ``height`` × ``width``; ``segments_info`` as
    detectron2's PanopticFPN (``id``, ``category_id`` = Q's channel, ``isthing``, ``score``).
    """

    @configurable
    def __init__(self, *, backbone, sem_seg_head, proposal_generator, roi_heads, instance_crf, num_thing_classes,
                 pixel_mean, pixel_std, train_instance_crf=False, train_detections="predicted",
                 instance_loss_weight=1.0, crf_stride=8, thing_score="semantic", min_area=0):
        super().__init__()
        self.backbone, self.sem_seg_head = backbone, sem_seg_head
        self.proposal_generator, self.roi_heads, self.instance_crf = proposal_generator, roi_heads, instance_crf
        self.num_classes = int(sem_seg_head.num_classes)
        self.num_thing_classes = int(num_thing_classes)
        if not 0 < self.num_thing_classes <= self.num_classes:
            raise ValueError(f"{self.num_thing_classes} thing classes (MODEL.ROI_HEADS.NUM_CLASSES) for a "
                             f"{self.num_classes}-class semantic head (things first, then stuff)")
        if train_detections not in ("predicted", "gt"):
            raise ValueError(f"TRAIN_DETECTIONS must be 'predicted' or 'gt', got {train_detections!r}")
        if thing_score not in ("semantic", "detection"):
            raise ValueError(f"THING_SCORE must be 'semantic' or 'detection', got {thing_score!r}")
        div = backbone.size_divisibility
        if div and div % crf_stride:
            raise ValueError(f"CRF_STRIDE {crf_stride} must divide the backbone's size divisibility {div}")
        self.train_instance_crf, self.train_detections = bool(train_instance_crf), train_detections
        if not self.train_instance_crf:  # stage 1: no loss reaches the CRF (and DDP needs no unused parameter)
            self.instance_crf.requires_grad_(False)
        self.instance_loss_weight, self.crf_stride = float(instance_loss_weight), int(crf_stride)
        self.thing_score, self.min_area = thing_score, int(min_area)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        c = cfg.MODEL.WSPS_PANOPTIC
        params = LocalCRFParams(**node_to_kwargs(c.CRF))
        return {
            "backbone": backbone,
            "sem_seg_head": build_sem_seg_head(cfg, backbone.output_shape()),
            "proposal_generator": build_proposal_generator(cfg, backbone.output_shape()),
            "roi_heads": build_roi_heads(cfg, backbone.output_shape()),
            "instance_crf": InstanceCRF(params, c.W_BOX, c.W_GLOBAL, c.SCORE_TRANSFORM),
            "num_thing_classes": cfg.MODEL.ROI_HEADS.NUM_CLASSES,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN, "pixel_std": cfg.MODEL.PIXEL_STD,
            "train_instance_crf": c.TRAIN_INSTANCE_CRF, "train_detections": c.TRAIN_DETECTIONS,
            "instance_loss_weight": c.INSTANCE_LOSS_WEIGHT, "crf_stride": c.CRF_STRIDE,
            "thing_score": c.THING_SCORE, "min_area": c.MIN_AREA,
        }

    @property
    def device(self):
        return self.pixel_mean.device

    def _images(self, batched_inputs):
        raw = [x["image"].to(self.device).float() for x in batched_inputs]
        div, pad = self.backbone.size_divisibility, self.backbone.padding_constraints
        images = ImageList.from_tensors([(x - self.pixel_mean) / self.pixel_std for x in raw], div,
                                        padding_constraints=pad)
        return images, ImageList.from_tensors(raw, div, padding_constraints=pad).tensor

    def forward(self, batched_inputs):
        images, raw = self._images(batched_inputs)
        features = self.backbone(images.tensor)
        logits = self.sem_seg_head.layers(features)
        if not self.training:
            return self.inference(batched_inputs, images, raw, features, logits)
        pad = self.sem_seg_head.ignore_value
        div, cons = self.backbone.size_divisibility, self.backbone.padding_constraints
        sem = ImageList.from_tensors([x["sem_seg"].to(self.device) for x in batched_inputs], div, pad,
                                     padding_constraints=cons).tensor
        losses = dict(self.sem_seg_head.losses(logits, sem))
        gt = [x["instances"].to(self.device) for x in batched_inputs]
        proposals, proposal_losses = self.proposal_generator(images, features, gt)
        _, detector_losses = self.roi_heads(images, features, proposals, gt)
        losses.update(proposal_losses)
        losses.update(detector_losses)
        if self.train_instance_crf:
            if self.train_detections == "gt":
                dets = [(g.gt_boxes.tensor, g.gt_classes, torch.ones(len(g), device=self.device)) for g in gt]
            else:
                dets = self._detect(images, features, proposals)
            pan = ImageList.from_tensors([x["pan_seg"].to(self.device) for x in batched_inputs], div, 255,
                                         padding_constraints=cons).tensor
            marginals, labels = self._crf(logits, raw, dets)
            s = self.crf_stride
            targets = pan[:, s // 2::s, s // 2::s]  # the label at each CRF cell's centre
            loss = sum(matched_instance_loss(m, lab.classes.to(self.device), t, x["pan_classes"].to(self.device))
                       for m, lab, t, x in zip(marginals, labels, targets, batched_inputs))
            losses["loss_instance_crf"] = loss / len(batched_inputs) * self.instance_loss_weight
        return losses

    @torch.no_grad()
    def _detect(self, images, features, proposals):
        """The detector's detections as at test time, not backpropagated through (Fig. 5's dashed path)."""
        was = self.roi_heads.training
        self.roi_heads.eval()
        try:
            dets, _ = self.roi_heads(images, {k: v.detach() for k, v in features.items()}, proposals, None)
        finally:
            self.roi_heads.train(was)
        return [(d.pred_boxes.tensor, d.pred_classes, d.scores) for d in dets]

    def _crf(self, logits, raw, dets):
        """Q and the image at the CRF's grid, the labels of each image, the CRF's marginals (B × (L, h, w))."""
        s = self.crf_stride
        size = (raw.shape[-2] // s, raw.shape[-1] // s)
        q = F.softmax(logits.float(), dim=1)
        q = F.interpolate(q, size=size, mode="area" if q.shape[-1] > size[1] else "bilinear")
        image = F.interpolate(raw, size=size, mode="area")
        stuff = range(self.num_thing_classes, self.num_classes)
        labels = [detection_labels(b.detach().float().cpu(), c.cpu(), sc.detach().float().cpu(), stuff,
                                   tuple(raw.shape[-2:])) for b, c, sc in dets]
        some = [i for i, lab in enumerate(labels) if len(lab)]  # no detection and no stuff class: nothing to label
        marginals = [q.new_zeros((0, *size))] * len(labels)
        if some:
            for i, m in zip(some, self.instance_crf(q[some], image[some], [labels[i] for i in some], s)):
                marginals[i] = m
        return marginals, labels

    def inference(self, batched_inputs, images, raw, features, logits):
        proposals, _ = self.proposal_generator(images, features, None)
        detections, _ = self.roi_heads(images, features, proposals, None)
        marginals, labels = self._crf(logits, raw, [(d.pred_boxes.tensor, d.pred_classes, d.scores)
                                                    for d in detections])
        q_all = F.softmax(logits.float(), dim=1)
        results = []
        for i, (x, image_size) in enumerate(zip(batched_inputs, images.image_sizes)):
            out = (x.get("height", image_size[0]), x.get("width", image_size[1]))
            owner = owner_at_output(marginals[i], image_size, out, self.crf_stride)
            q = resize_to_output(q_all[i], image_size, out, self.sem_seg_head.common_stride)
            ids, info = panoptic_from_owner(owner, labels[i], q, self.min_area, out)
            for seg in info:
                if seg["isthing"] and self.thing_score == "detection":
                    seg["score"] = float(labels[i].scores[seg["label"]])
            results.append({"panoptic_seg": (ids, info), "sem_seg": q, "instances": _thing_instances(ids, info, out)})
        return results


def _thing_instances(ids, info, out_size):
    things = [s for s in info if s["isthing"]]
    inst = Instances(out_size)
    masks = torch.stack([ids == s["id"] for s in things]) if things else ids.new_zeros((0, *out_size), dtype=torch.bool)
    inst.pred_masks = masks
    inst.pred_classes = torch.tensor([s["category_id"] for s in things], dtype=torch.long, device=ids.device)
    inst.scores = torch.tensor([s["score"] for s in things], dtype=torch.float32, device=ids.device)
    inst.pred_boxes = Boxes(_mask_boxes(masks))
    return inst


def _mask_boxes(masks):
    """(N, H, W) bool → (N, 4) x0, y0, x1, y1 tight boxes (zeros for empty masks)."""
    if not len(masks):
        return masks.new_zeros((0, 4), dtype=torch.float32)
    return BitMasks(masks).get_bounding_boxes().tensor
