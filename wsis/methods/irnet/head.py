"""
IRNet's two branches on a multi-level backbone (§4.1, Fig. 2; the official ``net/resnet50_irn.py``). Pure PyTorch.

Every convolution is 1×1 and followed by GroupNorm and ReLU, except the last of each branch.

* **Boundary branch**: each level → ``boundary_channels`` (32), resized to the finest level, concatenated, one 1×1
  conv → 1 channel (the class-boundary logit; B = its sigmoid).
* **Displacement branch**: each level → its width (official: 64, 128, 256, 256, 256); the coarser levels (stride >
  the finest) are resized to the largest of them, concatenated and merged by a 1×1 conv (256), resized to the finest
  level and concatenated with the finest levels; then 1×1 conv (256) and 1×1 conv → 2 channels (dy, dx) in cells of
  the finest grid. A :class:`MeanShift` subtracts the field's running mean at inference ("refined by subtracting
  the mean of D", §4.3).

Resizing is to the target level's exact size (bilinear, align_corners False), where the official code upsamples
by fixed factors and crops, so any input size works.

Shapes: N images; features ``{name: (N, C_l, h_l, w_l)}``; outputs (N, 1, h, w) and (N, 2, h, w) at the finest level.
"""
from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["IRNetHead", "MeanShift"]


def _groups(channels: int) -> int:
    return max(1, min(16, channels // 8))  # official: GN(4, 32), GN(8, 64), GN(16, 128), GN(16, 256)


def _reduce(in_channels, out_channels):
    conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
    return nn.Sequential(conv, nn.GroupNorm(_groups(out_channels), out_channels))


def _resize_relu(x, size):
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return F.relu(x)


class MeanShift(nn.Module):
    """Tracks the running mean of a (N, C, h, w) input over training batches (momentum as BatchNorm's) and
    subtracts it at inference; identity in training."""

    def __init__(self, channels: int = 2, momentum: float = 0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(channels))

    def forward(self, x):
        if self.training:
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * x.detach().mean(dim=(0, 2, 3)))
            return x
        return x - self.running_mean.view(1, -1, 1, 1)


class IRNetHead(nn.Module):
    """
    Args:
        input_shapes (dict[str, (channels, stride)]): the backbone levels IRNet reads, e.g. stem, res2 … res5.
        boundary_channels (int): per level in the boundary branch (official 32).
        displacement_channels (sequence[int]): per level (in the order of ``input_shapes``) in the displacement
            branch (official 64, 128, 256, 256, 256). merge_channels (int): the merging convs' width (256).
    """

    def __init__(self, input_shapes: Dict[str, Tuple[int, int]], boundary_channels: int = 32,
                 displacement_channels: Sequence[int] = (64, 128, 256, 256, 256), merge_channels: int = 256):
        super().__init__()
        if len(displacement_channels) != len(input_shapes):
            raise ValueError(f"{len(displacement_channels)} displacement widths for {len(input_shapes)} levels "
                             f"{list(input_shapes)}")
        self.names = list(input_shapes)
        strides = [int(input_shapes[n][1]) for n in self.names]
        self.stride = min(strides)
        self.fine = [n for n, s in zip(self.names, strides) if s == self.stride]
        self.coarse = [n for n, s in zip(self.names, strides) if s != self.stride]
        widths = dict(zip(self.names, displacement_channels))
        self.boundary_levels = nn.ModuleDict({n: _reduce(input_shapes[n][0], boundary_channels) for n in self.names})
        self.boundary_out = nn.Conv2d(boundary_channels * len(self.names), 1, 1, bias=True)
        self.disp_levels = nn.ModuleDict({n: _reduce(input_shapes[n][0], widths[n]) for n in self.names})
        fine_in = sum(widths[n] for n in self.fine)
        if self.coarse:
            self.disp_merge = _reduce(sum(widths[n] for n in self.coarse), merge_channels)
            fine_in += merge_channels
        self.disp_out = nn.Sequential(_reduce(fine_in, merge_channels), nn.ReLU(inplace=True),
                                      nn.Conv2d(merge_channels, 2, 1, bias=False), MeanShift(2))

    def forward(self, features: Dict[str, torch.Tensor]):
        """Returns (boundary logits (N, 1, h, w), displacement (N, 2, h, w)) at the finest level's grid."""
        size = features[self.fine[0]].shape[-2:]
        boundary = torch.cat([_resize_relu(self.boundary_levels[n](features[n]), size) for n in self.names], 1)
        boundary = self.boundary_out(boundary)
        fine = [F.relu(self.disp_levels[n](features[n])) for n in self.fine]
        if self.coarse:
            coarse_size = max((features[n].shape[-2:] for n in self.coarse), key=lambda s: s[0] * s[1])
            merged = torch.cat([_resize_relu(self.disp_levels[n](features[n]), coarse_size) for n in self.coarse], 1)
            fine.append(_resize_relu(self.disp_merge(merged), size))
        return boundary, self.disp_out(torch.cat(fine, 1))
