"""``DSRGHead``: a DeepLab-ASPP semantic segmentation head whose seed targets grow during training (registered in
``SEM_SEG_HEADS_REGISTRY``)."""
import torch.nn.functional as F
from torch import nn

from detectron2.config import configurable
from detectron2.modeling import SEM_SEG_HEADS_REGISTRY
from detectron2.utils.events import get_event_storage

from .training import DSRGSettings, dsrg_step, seeds_at, tags_from_seeds

__all__ = ["DSRGHead", "ASPP"]


class ASPP(nn.Module):
    """DeepLab-v2 ASPP (DSRG's segmentation network): per dilation a 3×3 dilated conv and two 1×1 convs (ReLU and
    dropout between); the branches' (B, num_classes, h, w) scores are summed."""

    def __init__(self, in_channels, channels, num_classes, dilations, dropout):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=d, dilation=d), nn.ReLU(inplace=True),
                          nn.Dropout2d(dropout), nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True),
                          nn.Dropout2d(dropout), nn.Conv2d(channels, num_classes, 1))
            for d in dilations)
        for branch in self.branches:
            for m in branch:
                if isinstance(m, nn.Conv2d):
                    nn.init.normal_(m.weight, std=0.01)
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        return sum(branch(x) for branch in self.branches)


@SEM_SEG_HEADS_REGISTRY.register()
class DSRGHead(nn.Module):
    """
    DeepLab-ASPP on one backbone feature. Training (``MODEL.DSRG.TARGETS "seeds"``): the targets are seed maps
    (``sem_seg``: 0 background, class + 1, ``IGNORE_VALUE`` unlabelled) that grow on the head's own predictions
    every iteration (:func:`wsis.methods.dsrg.training.dsrg_step`); ``"labels"``: cross-entropy on dense labels
    (the retraining stage). Inference: logits upsampled to the padded input, as ``SemSegFPNHead``.

    Under ``DSRGSemanticSegmentor`` the step gets the images (for its CRF) and the image tags; under detectron2's
    ``SemanticSegmentor`` it gets neither: the tags are the classes that have seeds, and the CRF must be off
    (``MODEL.DSRG.CONSTRAIN_WEIGHT 0.0``, ``MODEL.DSRG.GROW_ON_CRF False``).
    """

    @configurable
    def __init__(self, input_shape, *, in_feature, num_classes, ignore_value=255, loss_weight=1.0,
                 aspp_channels=1024, aspp_dilations=(6, 12, 18, 24), dropout=0.5, settings=DSRGSettings()):
        super().__init__()
        if in_feature not in input_shape:
            raise ValueError(f"MODEL.SEM_SEG_HEAD.IN_FEATURES: {in_feature!r} is not a backbone output "
                             f"({sorted(input_shape)})")
        self.in_feature = in_feature
        self.common_stride = input_shape[in_feature].stride
        self.num_classes = num_classes
        self.ignore_value = ignore_value
        self.loss_weight = loss_weight
        self.settings = settings
        self.aspp = ASPP(input_shape[in_feature].channels, aspp_channels, num_classes, aspp_dilations, dropout)
        self.batch_images = None  # set by DSRGSemanticSegmentor for one forward: (B, 3, H, W) padded images
        self.batch_tags = None  # and (B, num_classes) bool tags, background first

    @classmethod
    def from_config(cls, cfg, input_shape):
        settings = DSRGSettings.from_config(cfg)
        if cfg.MODEL.META_ARCHITECTURE == "SemanticSegmentor" and settings.needs_crf:
            raise ValueError("DSRGHead under SemanticSegmentor gets no images for its CRF: use "
                             "MODEL.META_ARCHITECTURE DSRGSemanticSegmentor, or set MODEL.DSRG.CONSTRAIN_WEIGHT 0.0 "
                             "and MODEL.DSRG.GROW_ON_CRF False")
        c, d = cfg.MODEL.SEM_SEG_HEAD, cfg.MODEL.DSRG
        return {"input_shape": {k: v for k, v in input_shape.items() if k in c.IN_FEATURES} or input_shape,
                "in_feature": c.IN_FEATURES[0], "num_classes": c.NUM_CLASSES, "ignore_value": c.IGNORE_VALUE,
                "loss_weight": c.LOSS_WEIGHT, "aspp_channels": d.ASPP_CHANNELS,
                "aspp_dilations": tuple(d.ASPP_DILATIONS), "dropout": d.DROPOUT, "settings": settings}

    def forward(self, features, targets=None):
        x = self.aspp(features[self.in_feature])
        if self.training:
            if targets is None:
                raise ValueError("DSRGHead trains on seed maps: the dataset dicts need sem_seg_file_name "
                                 "(WSIS.DATA.SEMANTIC_LABELS)")
            return None, self.losses(x, targets)
        return F.interpolate(x, scale_factor=self.common_stride, mode="bilinear", align_corners=False), {}

    def losses(self, logits, targets):
        seeds = seeds_at(targets, logits.shape[-2:], self.ignore_value)
        tags = self.batch_tags if self.batch_tags is not None else tags_from_seeds(seeds, self.num_classes)
        losses, labels = dsrg_step(logits, seeds, tags, self.settings, self.batch_images, self.common_stride)
        _log_growth(seeds, labels)
        return {k: v * self.loss_weight for k, v in losses.items()}


def _log_growth(seeds, labels):
    """Fractions of labelled pixels before and after growing, in detectron2's event storage (when training)."""
    try:
        storage = get_event_storage()
    except AssertionError:  # called outside a trainer
        return
    n = max(seeds.numel(), 1)
    storage.put_scalar("dsrg/seeded", float((seeds >= 0).sum()) / n)
    storage.put_scalar("dsrg/labelled", float((labels >= 0).sum()) / n)
