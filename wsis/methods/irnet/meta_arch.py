"""
``IRNet``: the inter-pixel relation network (IRNet §4) as a detectron2 meta-architecture — a backbone of detectron2's
registry (frozen by default, as IRNet) and :class:`wsis.methods.irnet.head.IRNetHead`, trained on IR labels.
"""
import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.structures import ImageList
from torch import nn

from .head import IRNetHead
from .losses import irnet_losses, labels_on_grid
from .paths import PairIndex

__all__ = ["IRNet"]


@META_ARCH_REGISTRY.register()
class IRNet(nn.Module):
    """
    Training: each input's ``"image"`` and ``"sem_seg"`` (its IR label map at image resolution: 0 background, class
    + 1, 255 ignore; ``WSIS.DATA.SEMANTIC_LABELS``) → ``{"loss_irnet_boundary", "loss_irnet_displacement"}``
    (Eqs. 8, 5 + 6). Inference: per image ``{"boundary": (h, w) B in [0, 1], "displacement": (2, h, w) D in grid
    cells (dy, dx)}`` on the output grid (stride :attr:`stride`) of the image at its input size.
    """

    @configurable
    def __init__(self, *, backbone, in_features, pixel_mean, pixel_std, boundary_channels=32,
                 displacement_channels=(64, 128, 256, 256, 256), merge_channels=256, freeze_backbone=True,
                 train_radius=10.0, ignore_value=255, boundary_loss_weight=0.5, displacement_loss_weight=0.5,
                 displacement_lr_multiplier=10.0, flip=True):
        super().__init__()
        shapes = backbone.output_shape()
        missing = [f for f in in_features if f not in shapes]
        if missing:
            raise ValueError(f"MODEL.IRNET.IN_FEATURES {missing} are not backbone outputs {sorted(shapes)}; add them "
                             "to the backbone's OUT_FEATURES (e.g. MODEL.RESNETS.OUT_FEATURES)")
        self.backbone, self.in_features = backbone, list(in_features)
        self.head = IRNetHead({f: (shapes[f].channels, shapes[f].stride) for f in self.in_features},
                              boundary_channels, displacement_channels, merge_channels)
        self.stride = self.head.stride
        self.freeze_backbone = bool(freeze_backbone)
        if self.freeze_backbone:
            for p in self.backbone.parameters():
                p.requires_grad_(False)
        self.index = PairIndex(train_radius)
        self.ignore_value = int(ignore_value)
        self.loss_weights = (float(boundary_loss_weight), float(displacement_loss_weight))
        self.displacement_lr_multiplier = float(displacement_lr_multiplier)
        self.flip = bool(flip)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg):
        c = cfg.MODEL.IRNET
        return {"backbone": build_backbone(cfg), "in_features": c.IN_FEATURES, "pixel_mean": cfg.MODEL.PIXEL_MEAN,
                "pixel_std": cfg.MODEL.PIXEL_STD, "boundary_channels": c.BOUNDARY_CHANNELS,
                "displacement_channels": c.DISPLACEMENT_CHANNELS, "merge_channels": c.MERGE_CHANNELS,
                "freeze_backbone": c.FREEZE_BACKBONE, "train_radius": c.TRAIN_RADIUS, "ignore_value": c.IGNORE_VALUE,
                "boundary_loss_weight": c.BOUNDARY_LOSS_WEIGHT, "displacement_loss_weight": c.DISPLACEMENT_LOSS_WEIGHT,
                "displacement_lr_multiplier": c.DISPLACEMENT_LR_MULTIPLIER, "flip": c.FLIP}

    @property
    def device(self):
        return self.pixel_mean.device

    def train(self, mode=True):
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()  # frozen statistics too, as the official Net.train
        return self

    def lr_factor(self, name):
        """Per-parameter LR factor (:class:`wsis.engine.WSISTrainer` asks): ``DISPLACEMENT_LR_MULTIPLIER`` for the
        displacement branch, 1 otherwise."""
        return self.displacement_lr_multiplier if name.startswith("head.disp_") else 1.0

    def _features(self, images):
        if self.freeze_backbone:
            with torch.no_grad():
                feats = self.backbone(images)
        else:
            feats = self.backbone(images)
        return {f: feats[f] for f in self.in_features}

    def _normalize(self, image):
        return (image.to(self.device).float() - self.pixel_mean) / self.pixel_std

    def forward(self, batched_inputs):
        if not self.training:
            return [dict(zip(("boundary", "displacement"), self.outputs(x["image"]))) for x in batched_inputs]
        missing = [f"{x.get('file_name')} (image id {x.get('image_id')})" for x in batched_inputs if "sem_seg" not in x]
        if missing:
            raise ValueError(f"IRNet trains on IR label maps (WSIS.DATA.SEMANTIC_LABELS); none for "
                             f"{', '.join(missing)}")
        images = ImageList.from_tensors([self._normalize(x["image"]) for x in batched_inputs],
                                        self.backbone.size_divisibility)
        labels = ImageList.from_tensors([x["sem_seg"].to(self.device) for x in batched_inputs],
                                        self.backbone.size_divisibility, pad_value=self.ignore_value).tensor
        boundary, displacement = self.head(self._features(images.tensor))
        grid = labels_on_grid(labels, self.stride, boundary.shape[-2:], self.ignore_value)
        return irnet_losses(boundary, displacement, grid, self.index, self.ignore_value, *self.loss_weights)

    def outputs(self, image):
        """
        One image's boundary map and displacement field.

        Args:
            image (Tensor): (3, H, W) in the input format.
        Returns:
            (Tensor, Tensor): (h, w) B = sigmoid of the boundary logits (averaged with those of the flipped image
            when ``flip``, as the official EdgeDisplacement) and (2, h, w) D of the unflipped image, on CPU.
        """
        x = self._normalize(image)[None]
        if self.flip:
            x = torch.cat([x, x.flip(-1)])
        with torch.no_grad():
            logits, disp = self.head(self._features(x))
        b = logits[:, 0]
        b = (b[0] + b[1].flip(-1)) / 2 if self.flip else b[0]
        return torch.sigmoid(b).cpu(), disp[0].cpu()
