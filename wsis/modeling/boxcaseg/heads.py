"""
The three segmentation heads of BoxCaseg (§3.3, Fig. 4): weak, salient and transferred, each a 1×1 convolution to one
channel of logits on the backbone's (B, C, h, w) feature map.

The transferred head's weight is not a parameter: it is produced from the weak head's **detached** weight by a
two-layer MLP (weight transfer, as in Mask^X R-CNN; §3.3.2), so no gradient reaches the weak head through it.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ..losses.boxcaseg import _check_alpha


def upsample_to(logits, size):
    """
    Bilinearly resize (B, K, h, w) maps to (B, K, H, W) (``align_corners=False``); BoxCaseg upsamples the heads' maps
    to the input crop size (§3.3.1). Resize **logits**, then apply the sigmoid.

    Args:
        logits (Tensor): (B, K, h, w).
        size (int or (int, int)): output (H, W); an int means a square.
    """
    if logits.dim() != 4:
        raise ValueError(f"logits must be (B, K, h, w), got shape {tuple(logits.shape)}")
    size = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)
    if tuple(logits.shape[-2:]) == size:
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def salient_probability(salient_logits, transferred_logits, alpha=0.7):
    """
    The fused salient prediction of Eq. 3: α·σ(S_a) + (1 − α)·σ(S_t), α ∈ [0, 1] (0.7 on PASCAL, 0.6 on COCO).
    This is what inference and proxy masks use; the training loss is computed in log space by
    :func:`wsis.modeling.losses.boxcaseg.mixed_pixel_loss`.

    Args:
        salient_logits, transferred_logits (Tensor): logits of the same shape, e.g. (B, 1, H, W).

    Returns:
        Tensor: probabilities, same shape.
    """
    alpha = _check_alpha(alpha)
    if salient_logits.shape != transferred_logits.shape:
        raise ValueError(f"salient {tuple(salient_logits.shape)} and transferred {tuple(transferred_logits.shape)} "
                         f"logits must have the same shape")
    return alpha * salient_logits.sigmoid() + (1.0 - alpha) * transferred_logits.sigmoid()


class WeightTransfer(nn.Module):
    """
    Weight-transfer function of §3.3.2: a 1×1-conv weight (K, C, 1, 1), each output filter flattened to C, goes
    through Linear(C, 4C) → LeakyReLU(0.1) → Linear(4C, C) and back to (K, C, 1, 1). BoxCaseg uses K = 1.
    """

    def __init__(self, in_channels, hidden_factor=4, negative_slope=0.1):
        super().__init__()
        if int(in_channels) < 1 or int(hidden_factor) < 1:
            raise ValueError(f"in_channels and hidden_factor must be positive, got {in_channels}, {hidden_factor}")
        self.in_channels = int(in_channels)
        hidden = self.in_channels * int(hidden_factor)
        self.fc1 = nn.Linear(self.in_channels, hidden)
        self.act = nn.LeakyReLU(negative_slope)
        self.fc2 = nn.Linear(hidden, self.in_channels)

    def forward(self, weight):
        """(K, C, 1, 1) conv weight → (K, C, 1, 1) transferred weight."""
        if weight.dim() != 4 or weight.shape[1] != self.in_channels or tuple(weight.shape[2:]) != (1, 1):
            raise ValueError(f"weight must be (K, {self.in_channels}, 1, 1), got shape {tuple(weight.shape)}")
        k = weight.shape[0]
        return self.fc2(self.act(self.fc1(weight.reshape(k, self.in_channels)))).reshape(k, self.in_channels, 1, 1)


class BoxCasegHeads(nn.Module):
    """
    Weak, salient and transferred 1×1-conv heads, one output channel each (Fig. 4).

    - ``weak``: trained by the MIL loss on every sample (Eq. 1–2);
    - ``salient``: an ordinary conv, trained by the pixel loss on salient samples (Eq. 3);
    - transferred: weight = ``weight_transfer(weak.weight.detach())``, bias = its own parameter ``transferred_bias``;
      trained with the salient head through the mixture of Eq. 3. Only the MLP and the bias learn from it; the weak
      head's weight never receives a gradient from the transferred branch (gradients still reach the features).

    Args:
        in_channels (int): C, the channels of the feature map.
        alpha (float): α of Eq. 3, used by :meth:`predict`.
    """

    def __init__(self, in_channels, alpha=0.7):
        super().__init__()
        self.in_channels = int(in_channels)
        self.alpha = _check_alpha(alpha)
        self.weak = nn.Conv2d(self.in_channels, 1, 1)
        self.salient = nn.Conv2d(self.in_channels, 1, 1)
        self.weight_transfer = WeightTransfer(self.in_channels)
        self.transferred_bias = nn.Parameter(torch.zeros(1))

    def transferred_weight(self):
        """(1, C, 1, 1): the transferred head's weight, a function of the detached weak weight."""
        return self.weight_transfer(self.weak.weight.detach())

    def _check(self, features):
        if features.dim() != 4 or features.shape[1] != self.in_channels:
            raise ValueError(f"features must be (B, {self.in_channels}, h, w), got shape {tuple(features.shape)}")

    def _salient_and_transferred(self, features):
        return self.salient(features), F.conv2d(features, self.transferred_weight(), self.transferred_bias)

    def forward(self, features, output_size=None):
        """
        Args:
            features (Tensor): (B, C, h, w).
            output_size (int or (int, int) or None): if given, every map is bilinearly upsampled to it
                (:func:`upsample_to`), e.g. the input crop size.

        Returns:
            dict[str, Tensor]: logits ``{"weak", "salient", "transferred"}``, each (B, 1, h, w) or (B, 1, H, W).
        """
        self._check(features)
        salient, transferred = self._salient_and_transferred(features)
        out = {"weak": self.weak(features), "salient": salient, "transferred": transferred}
        if output_size is not None:
            out = {k: upsample_to(v, output_size) for k, v in out.items()}
        return out

    def predict(self, features, output_size=None):
        """(B, 1, H, W) fused salient probability α·σ(S_a) + (1 − α)·σ(S_t) (Eq. 3), as used for proxy masks (§3.4);
        the weak head is not evaluated."""
        self._check(features)
        salient, transferred = self._salient_and_transferred(features)
        if output_size is not None:
            salient, transferred = upsample_to(salient, output_size), upsample_to(transferred, output_size)
        return salient_probability(salient, transferred, self.alpha)
