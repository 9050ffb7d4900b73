"""Losses as pure functions of tensors (detectron2-free)."""
from .mask_losses import weak_mask_rcnn_loss

__all__ = ["weak_mask_rcnn_loss"]
