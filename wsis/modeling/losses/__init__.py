"""Losses as pure functions of tensors (detectron2-free)."""
from .box_supervised import (
    box_to_grid_mask,
    color_similarity,
    mil_bag_loss,
    mil_pairwise_loss,
    pairwise_color_loss,
    projection_loss,
    rgb_to_lab,
    warmup_factor,
)
from .boxcaseg import boxcaseg_losses, boxcaseg_mil_loss, mixed_pixel_loss
from .mask_losses import select_class_logits, weak_mask_rcnn_loss

__all__ = [
    "weak_mask_rcnn_loss",
    "select_class_logits",
    "box_to_grid_mask",
    "mil_bag_loss",
    "mil_pairwise_loss",
    "projection_loss",
    "rgb_to_lab",
    "color_similarity",
    "pairwise_color_loss",
    "warmup_factor",
    "boxcaseg_mil_loss",
    "mixed_pixel_loss",
    "boxcaseg_losses",
]
