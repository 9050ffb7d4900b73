"""Colour-space conversion of image tensors (pure PyTorch), for colour-affinity losses and CRFs."""
import torch

__all__ = ["rgb_to_lab"]


def rgb_to_lab(images):
    """
    CIE L*a*b* (D65) of sRGB images, in pure PyTorch (works on GPU and on batches), with the scale BoxInst's θ = 2 is
    meant for: L ∈ [0, 100], a and b roughly [−128, 127] (the same as ``cv2.cvtColor(float32 RGB / 255, COLOR_RGB2LAB)``
    and ``skimage.color.rgb2lab``; **not** cv2's 8-bit output, which rescales L and offsets a, b by 128).
    Convert the whole image, then ROI-align the Lab image onto the mask grid to get :func:`color_similarity`'s patches.

    Args:
        images (Tensor): (..., 3, H, W) **RGB** in [0, 255], uint8 or float. Detectron2's default BGR input: flip first
            (``images.flip(-3)``).

    Returns:
        Tensor: (..., 3, H, W) float32 (float64 for float64 input) L, a, b.
    """
    if images.dim() < 3 or images.size(-3) != 3:
        raise ValueError(f"images must be (..., 3, H, W), got shape {tuple(images.shape)}")
    x = images.to(torch.float64 if images.dtype == torch.float64 else torch.float32) / 255.0
    lin = torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0) + 0.055) / 1.055) ** 2.4)
    rgb_to_xyz = lin.new_tensor([[0.412453, 0.357580, 0.180423],
                                 [0.212671, 0.715160, 0.072169],
                                 [0.019334, 0.119193, 0.950227]])
    white = lin.new_tensor([0.950456, 1.0, 1.088754])
    xyz = torch.einsum("ck,...khw->...chw", rgb_to_xyz, lin) / white[:, None, None]
    delta = 6.0 / 29.0
    f = torch.where(xyz > delta ** 3, xyz.clamp(min=delta ** 3) ** (1.0 / 3.0), xyz / (3 * delta ** 2) + 4.0 / 29.0)
    fx, fy, fz = f.unbind(dim=-3)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)
