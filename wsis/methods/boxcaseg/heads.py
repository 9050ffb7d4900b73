"""
The three segmentation heads of BoxCaseg (§3.3, Fig. 4): weak, salient and transferred, one channel of logits each
on the backbone's (B, C, h, w) feature map.

Two variants, chosen by the arguments (``MODEL.BOXCASEG.*``):

- **paper** (Fig. 4 as drawn): each head is one 1×1 conv; the transferred head's weight is the weight-transfer MLP of
  the weak head's detached weight, with a bias of its own; the salient output mixes probabilities,
  α·σ(S_a) + (1 − α)·σ(S_t) (Eq. 3).
- **official code** (``seg_hrnet_trans_fcn.py``): each head is conv1×1 (C→C) → norm → ReLU → conv1×1 (C→1)
  (``layers=2``); the transfer maps the weak head's detached weights of **both** convs (one MLP per conv, applied to
  each output filter) and its biases as k·b + b0 (k = 1, b0 = 0 learnable; ``transfer_bias="affine"``), with a norm
  of its own between them; the salient output mixes **logits**, α·S_a + (1 − α)·S_t, trained with BCE-with-logits
  and read through a sigmoid (``mix="logit"``).

In both, no gradient reaches the weak head's parameters through the transferred branch (weights and biases are
detached); only the MLPs, the bias parameters and the transfer norm learn from it (and the features).
"""
import torch
import torch.nn.functional as F
from torch import nn

from .losses import MIXES, _check_alpha, mix_logits

__all__ = ["BoxCasegHeads", "WeightTransfer", "salient_probability", "upsample_to"]


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


def salient_probability(salient_logits, transferred_logits, alpha=0.7, mix="prob"):
    """
    The fused salient prediction: α·σ(S_a) + (1 − α)·σ(S_t) (Eq. 3, ``mix="prob"``) or σ(α·S_a + (1 − α)·S_t) (the
    official code, ``mix="logit"``), α ∈ [0, 1] (0.7 on PASCAL, 0.6 on COCO). This is what inference and proxy masks
    use; training losses are in :func:`wsis.methods.boxcaseg.losses.mixed_pixel_loss`.

    Args:
        salient_logits, transferred_logits (Tensor): logits of the same shape, e.g. (B, 1, H, W).

    Returns:
        Tensor: probabilities, same shape.
    """
    alpha = _check_alpha(alpha)
    if salient_logits.shape != transferred_logits.shape:
        raise ValueError(f"salient {tuple(salient_logits.shape)} and transferred {tuple(transferred_logits.shape)} "
                         f"logits must have the same shape")
    if mix == "logit":
        return mix_logits(salient_logits, transferred_logits, alpha).sigmoid()
    if mix != "prob":
        raise ValueError(f"mix must be one of {MIXES}, got {mix!r}")
    return alpha * salient_logits.sigmoid() + (1.0 - alpha) * transferred_logits.sigmoid()


class WeightTransfer(nn.Module):
    """
    Weight-transfer function of §3.3.2 for one 1×1 conv: its weight (K, C, 1, 1), each output filter flattened to C,
    goes through Linear(C, 4C) → LeakyReLU(0.1) → Linear(4C, C) and back to (K, C, 1, 1). With ``affine_bias`` it
    also maps the conv's bias b (K,) to k·b + b0 (scalars k = 1, b0 = 0 at start; the official ``Transfer``).
    """

    def __init__(self, in_channels, hidden_factor=4, negative_slope=0.1, affine_bias=False):
        super().__init__()
        if int(in_channels) < 1 or int(hidden_factor) < 1:
            raise ValueError(f"in_channels and hidden_factor must be positive, got {in_channels}, {hidden_factor}")
        self.in_channels = int(in_channels)
        hidden = self.in_channels * int(hidden_factor)
        self.fc1 = nn.Linear(self.in_channels, hidden)
        self.act = nn.LeakyReLU(negative_slope)
        self.fc2 = nn.Linear(hidden, self.in_channels)
        if affine_bias:
            self.k = nn.Parameter(torch.ones(1))
            self.b0 = nn.Parameter(torch.zeros(1))

    def forward(self, weight):
        """(K, C, 1, 1) conv weight → (K, C, 1, 1) transferred weight."""
        if weight.dim() != 4 or weight.shape[1] != self.in_channels or tuple(weight.shape[2:]) != (1, 1):
            raise ValueError(f"weight must be (K, {self.in_channels}, 1, 1), got shape {tuple(weight.shape)}")
        k = weight.shape[0]
        return self.fc2(self.act(self.fc1(weight.reshape(k, self.in_channels)))).reshape(k, self.in_channels, 1, 1)

    def transfer_bias(self, bias):
        """(K,) detached bias → k·b + b0 (needs ``affine_bias``)."""
        return self.k * bias + self.b0


def _head(in_channels, layers, norm_layer):
    if layers == 1:
        return nn.Conv2d(in_channels, 1, 1)
    norm = norm_layer(in_channels) if norm_layer is not None else None
    return nn.Sequential(nn.Conv2d(in_channels, in_channels, 1, bias=True), norm or nn.Identity(), nn.ReLU(),
                         nn.Conv2d(in_channels, 1, 1))


class BoxCasegHeads(nn.Module):
    """
    Weak, salient and transferred heads, one output channel each (Fig. 4; the module doc for the two variants).

    - ``weak``: trained by the MIL loss on every sample (Eq. 1–2);
    - ``salient``: an ordinary head, trained by the pixel loss on salient samples (Eq. 3);
    - transferred: the weak head's convs with transferred weights (and biases), trained with the salient head through
      the mixture of Eq. 3.

    Args:
        in_channels (int): C, the channels of the feature map.
        alpha (float): α of Eq. 3, used by :meth:`predict`.
        layers (int): 1 (paper) or 2 (official: conv → norm → ReLU → conv, hidden width C).
        norm_layer (callable or None): ``norm_layer(C)`` → the norm of two-layer heads (the official code: BN).
        transfer_bias (str): "own" (a learnable bias per transferred conv, zeros at start) or "affine" (k·b + b0 of
            the weak conv's detached bias, official).
        mix (str): "prob" (Eq. 3) or "logit" (official).
    """

    def __init__(self, in_channels, alpha=0.7, layers=1, norm_layer=None, transfer_bias="own", mix="prob"):
        super().__init__()
        if layers not in (1, 2):
            raise ValueError(f"layers must be 1 or 2, got {layers!r}")
        if transfer_bias not in ("own", "affine"):
            raise ValueError(f"transfer_bias must be 'own' or 'affine', got {transfer_bias!r}")
        if mix not in MIXES:
            raise ValueError(f"mix must be one of {MIXES}, got {mix!r}")
        self.in_channels, self.layers = int(in_channels), int(layers)
        self.alpha, self.mix, self.transfer_bias_mode = _check_alpha(alpha), mix, transfer_bias
        self.weak = _head(self.in_channels, layers, norm_layer)
        self.salient = _head(self.in_channels, layers, norm_layer)
        affine = transfer_bias == "affine"
        self.weight_transfer = WeightTransfer(self.in_channels, affine_bias=affine)
        if layers == 2:
            self.weight_transfer_out = WeightTransfer(self.in_channels, affine_bias=affine)
            self.transfer_norm = (norm_layer(self.in_channels) if norm_layer is not None else None) or nn.Identity()
        if not affine:
            self.transferred_bias = nn.Parameter(torch.zeros(1))
            if layers == 2:
                self.transferred_bias_hidden = nn.Parameter(torch.zeros(self.in_channels))

    def _weak_convs(self):
        return [self.weak] if self.layers == 1 else [self.weak[0], self.weak[3]]

    def transferred_convs(self):
        """[(weight, bias)] of the transferred head's convs, in order, from the weak head's **detached** ones."""
        transfers = [self.weight_transfer] if self.layers == 1 else [self.weight_transfer, self.weight_transfer_out]
        own = None
        if self.transfer_bias_mode == "own":
            own = [self.transferred_bias] if self.layers == 1 else [self.transferred_bias_hidden, self.transferred_bias]
        out = []
        for i, (conv, transfer) in enumerate(zip(self._weak_convs(), transfers)):
            weight = transfer(conv.weight.detach())
            bias = transfer.transfer_bias(conv.bias.detach()) if own is None else own[i]
            out.append((weight, bias))
        return out

    def transferred_weight(self):
        """(1, C, 1, 1): the (last) transferred conv's weight, a function of the detached weak weight."""
        return self.transferred_convs()[-1][0]

    def _check(self, features):
        if features.dim() != 4 or features.shape[1] != self.in_channels:
            raise ValueError(f"features must be (B, {self.in_channels}, h, w), got shape {tuple(features.shape)}")

    def _transferred(self, features):
        convs = self.transferred_convs()
        if self.layers == 1:
            return F.conv2d(features, *convs[0])
        hidden = F.relu(self.transfer_norm(F.conv2d(features, *convs[0])))
        return F.conv2d(hidden, *convs[1])

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
        out = {"weak": self.weak(features), "salient": self.salient(features),
               "transferred": self._transferred(features)}
        if output_size is not None:
            out = {k: upsample_to(v, output_size) for k, v in out.items()}
        return out

    def predict(self, features, output_size=None):
        """(B, 1, H, W) fused salient probability (:func:`salient_probability` with this head's α and mix), as used
        for proxy masks (§3.4); the weak head is not evaluated."""
        self._check(features)
        salient, transferred = self.salient(features), self._transferred(features)
        if output_size is not None:
            salient, transferred = upsample_to(salient, output_size), upsample_to(transferred, output_size)
        return salient_probability(salient, transferred, self.alpha, self.mix)
