"""
BoxCaseg's crop-level joint network (Wang et al., CVPR 2021, §3.2–3.3, Fig. 4) as a Detectron2 meta-architecture.

Any registered backbone gives multi-level features; they are upsampled to the resolution of the first
(``MODEL.BOXCASEG.IN_FEATURES``) and concatenated, as HRNetV2's segmentation head does with HRNet's four branches;
with ``FUSE_DIM > 0`` a 1×1 conv + norm + ReLU then mixes them (the paper variant), with 0 the heads read the
concatenation directly (the official code, whose two-layer heads begin with that 1×1 conv). The weak, salient and
transferred heads are :class:`wsis.methods.boxcaseg.heads.BoxCasegHeads` (``HEAD_LAYERS``, ``TRANSFER_BIAS``, ``MIX``).
Losses: :func:`wsis.methods.boxcaseg.losses.boxcaseg_losses`.
"""
import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import Conv2d, get_norm
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from torch import nn

from .heads import BoxCasegHeads
from .losses import boxcaseg_losses

__all__ = ["BoxCaseg"]

HEAD_MODES = ("weak", "weak+salient", "all")


@META_ARCH_REGISTRY.register()
class BoxCaseg(nn.Module):
    """
    Training input: crops from :class:`wsis.methods.boxcaseg.mapper.BoxCasegCropMapper` (``image`` (3, S, S),
    ``box_label``, ``salient_mask``, ``is_salient``); returns ``{"loss_mil", "loss_pixel"}``.
    Inference input: one dict per image with ``image`` (N, 3, s, s), the crops of its N boxes; returns
    ``{"proxy_probs": (N, s, s)}`` per image: the fused salient probability (Eq. 3's mixture; the weak head's
    probability when ``heads="weak"``).
    """

    @configurable
    def __init__(self, *, backbone, in_features, fuse_dim, norm, alpha, pairwise_weight, pixel_weight, heads,
                 pixel_mean, pixel_std, head_layers=1, transfer_bias="own", mix="prob", inference_batch=16):
        super().__init__()
        if heads not in HEAD_MODES:
            raise ValueError(f"MODEL.BOXCASEG.HEADS must be one of {HEAD_MODES}, got {heads!r}")
        self.backbone = backbone
        self.in_features = list(in_features)
        shapes = backbone.output_shape()
        missing = [f for f in self.in_features if f not in shapes]
        if missing:
            raise ValueError(f"MODEL.BOXCASEG.IN_FEATURES {missing} are not outputs of the backbone {sorted(shapes)}")
        in_channels = sum(shapes[f].channels for f in self.in_features)
        if fuse_dim > 0:
            self.fuse = Conv2d(in_channels, fuse_dim, 1, bias=not norm, norm=get_norm(norm, fuse_dim),
                               activation=F.relu)
        else:
            self.fuse, fuse_dim = nn.Identity(), in_channels
        self.mode = heads
        self.alpha = 1.0 if heads == "weak+salient" else alpha
        self.mix = mix
        self.heads = BoxCasegHeads(fuse_dim, self.alpha, layers=head_layers, transfer_bias=transfer_bias, mix=mix,
                                   norm_layer=(lambda c: get_norm(norm, c)) if norm else None)
        self.pairwise_weight = pairwise_weight
        self.pixel_weight = pixel_weight
        self.inference_batch = inference_batch
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg):
        bc = cfg.MODEL.BOXCASEG
        return {"backbone": build_backbone(cfg), "in_features": bc.IN_FEATURES, "fuse_dim": bc.FUSE_DIM,
                "norm": bc.NORM, "alpha": bc.ALPHA, "pairwise_weight": bc.PAIRWISE_WEIGHT,
                "pixel_weight": bc.PIXEL_WEIGHT, "heads": bc.HEADS, "pixel_mean": cfg.MODEL.PIXEL_MEAN,
                "pixel_std": cfg.MODEL.PIXEL_STD, "head_layers": bc.HEAD_LAYERS, "transfer_bias": bc.TRANSFER_BIAS,
                "mix": bc.MIX}

    @property
    def device(self):
        return self.pixel_mean.device

    def fused_features(self, images):
        """(B, 3, S, S) uint8 or float crops → (B, FUSE_DIM, h, w) fused features at the first feature's stride."""
        x = (images.to(self.device).float() - self.pixel_mean) / self.pixel_std
        feats = self.backbone(x)
        size = feats[self.in_features[0]].shape[-2:]
        maps = [feats[f] if feats[f].shape[-2:] == size else
                F.interpolate(feats[f], size=size, mode="bilinear", align_corners=False) for f in self.in_features]
        return self.fuse(torch.cat(maps, dim=1))

    def forward(self, batched_inputs):
        if not self.training:
            return self.inference(batched_inputs)
        images = torch.stack([x["image"] for x in batched_inputs])
        size = images.shape[-2:]
        outputs = self.heads(self.fused_features(images), output_size=tuple(size))
        box_masks = torch.stack([x["box_label"] for x in batched_inputs]).to(self.device)
        is_salient = torch.tensor([bool(x["is_salient"]) for x in batched_inputs], device=self.device)
        salient = torch.stack([x["salient_mask"] if x["salient_mask"] is not None else
                               torch.zeros(size, dtype=torch.bool) for x in batched_inputs]).to(self.device)
        if self.mode == "weak":
            is_salient = torch.zeros_like(is_salient)  # Tab. 4 "weak only": no pixel loss
        losses = boxcaseg_losses(outputs, box_masks, salient, is_salient, self.alpha, self.pairwise_weight, self.mix)
        losses["loss_pixel"] = losses["loss_pixel"] * self.pixel_weight
        return losses

    @torch.no_grad()
    def predict_crops(self, crops):
        """
        (N, 3, s, s) crops → (N, s, s) foreground probability. A side that is not a multiple of the backbone's
        ``size_divisibility`` (FPN: 32; e.g. a whole image at ``SALIENT_RESIZE`` 144) is zero-padded at the bottom /
        right to one (zero pixels, as the box crops' parts outside the image) and the maps are cropped back.
        """
        h, w = crops.shape[-2:]
        div = max(int(getattr(self.backbone, "size_divisibility", 0) or 0), 1)
        padded = (-(-h // div) * div, -(-w // div) * div)
        if padded != (h, w):
            crops = F.pad(crops, (0, padded[1] - w, 0, padded[0] - h))
        out = []
        for chunk in crops.split(self.inference_batch):
            feats = self.fused_features(chunk)
            if self.mode == "weak":
                out.append(self.heads(feats, output_size=padded)["weak"].sigmoid()[:, 0, :h, :w])
            else:
                out.append(self.heads.predict(feats, output_size=padded)[:, 0, :h, :w])
        if not out:
            return torch.zeros(crops.shape[:1] + (h, w), device=self.device)
        return torch.cat(out)

    def inference(self, batched_inputs):
        return [{"proxy_probs": self.predict_crops(x["image"])} for x in batched_inputs]
