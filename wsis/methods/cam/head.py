"""
The CAM classifier head of IRNet §3 (after Zhou et al., CVPR 2016): global average pooling of the last feature map
followed by a 1×1 classifier **without bias**, so that the class activation map is the same linear map applied at every
position (Eq. 1, numerator: φ_cᵀ f(x)).
"""
from torch import nn

from .localization import class_activation_maps

__all__ = ["CAMHead"]


class CAMHead(nn.Module):
    """
    GAP + 1×1 convolution without bias (IRNet's ``resnet50_cam.Net``: ``nn.Conv2d(2048, 20, 1, bias=False)``).

    The classifier keeps PyTorch's default ``nn.Conv2d`` initialisation (Kaiming-uniform with a = √5), as IRNet's
    official code does: it does not re-initialise the layer.

    Because GAP and the 1×1 convolution are both linear, ``forward`` = GAP of :meth:`cam` (the logits are the mean of
    the class activation maps).
    """

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        if in_channels < 1 or num_classes < 1:
            raise ValueError(f"in_channels and num_classes must be positive, got {in_channels}, {num_classes}")
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.classifier = nn.Conv2d(self.in_channels, self.num_classes, 1, bias=False)

    def _check(self, features):
        if features.dim() != 4 or features.shape[1] != self.in_channels:
            raise ValueError(f"features must be (N, {self.in_channels}, h, w), got {tuple(features.shape)}")

    def forward(self, features):
        """
        Args:
            features (Tensor): (N, C, h, w) the backbone's last feature map f(x).

        Returns:
            Tensor: (N, K) classification logits φ_cᵀ GAP(f(x)).
        """
        self._check(features)
        pooled = features.mean(dim=(2, 3), keepdim=True)  # IRNet's torchutils.gap2d
        return self.classifier(pooled).flatten(1)

    def cam(self, features, classes=None):
        """
        Args:
            features (Tensor): (N, C, h, w).
            classes (sequence[int] or Tensor or None): the class channels to return (default: all K).

        Returns:
            Tensor: (N, K', h, w) the raw class activation φ_cᵀ f(x) (Eq. 1's numerator: no ReLU, no normalisation).
        """
        self._check(features)
        return class_activation_maps(features, self.classifier.weight, classes)
