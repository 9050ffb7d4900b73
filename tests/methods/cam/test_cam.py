"""CAM / Grad-CAM pure parts: the head, the classifier loss, the cues and IRNet's multi-scale + flip fusion."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wsis.methods.cam.head import CAMHead
from wsis.methods.cam.localization import (
    center_gaussian_prior,
    class_activation_maps,
    grad_cam,
    multiscale_cams,
    strided_size,
    strided_up_size,
    upsample_cams,
)
from wsis.methods.cam.losses import multilabel_soft_margin_loss, tags_to_targets

# features (1, 2, 2, 2): channel 0 = [[1, 2], [3, 4]], channel 1 = [[0, 1], [-1, 2]]
FEATURES = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [-1.0, 2.0]]]])
# class 0: φ = (1, 2); class 1: φ = (-1, 0.5)
WEIGHT = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])
# CAM_0 = c0 + 2 c1, CAM_1 = -c0 + 0.5 c1, written out
CAM_0 = [[1.0, 4.0], [1.0, 8.0]]
CAM_1 = [[-1.0, -1.5], [-3.5, -3.0]]


def _head():
    head = CAMHead(2, 2)
    with torch.no_grad():
        head.classifier.weight.copy_(WEIGHT[:, :, None, None])
    return head


# ---------------------------------------------------------------- head and closed-form CAM
def test_head_is_gap_plus_bias_free_1x1_classifier():
    head = CAMHead(2048, 20)
    assert head.classifier.bias is None and tuple(head.classifier.weight.shape) == (20, 2048, 1, 1)
    assert head.classifier.kernel_size == (1, 1)


def test_cam_of_a_hand_built_network_equals_the_closed_form():
    head = _head()
    cam = head.cam(FEATURES)
    assert torch.equal(cam, torch.tensor([[CAM_0, CAM_1]]))
    assert torch.equal(class_activation_maps(FEATURES, WEIGHT), cam)
    assert torch.equal(class_activation_maps(FEATURES, WEIGHT[:, :, None, None], classes=[1]), cam[:, 1:])
    assert torch.equal(head.cam(FEATURES, classes=[1, 0]), cam[:, [1, 0]])
    # logits = classifier(GAP(f)) = mean of the CAM: 14 / 4 and -9 / 4
    assert torch.allclose(head(FEATURES), torch.tensor([[3.5, -2.25]]))
    assert head.cam(FEATURES, classes=[]).shape == (1, 0, 2, 2)


def test_cam_rejects_wrong_channels():
    with pytest.raises(ValueError, match="features"):
        _head()(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError):
        class_activation_maps(torch.zeros(1, 3, 2, 2), WEIGHT)


# ---------------------------------------------------------------- Grad-CAM
def test_grad_cam_of_a_gap_linear_network_is_relu_cam_over_hw():
    torch.manual_seed(0)
    head = CAMHead(6, 4)
    feats = torch.randn(3, 6, 5, 7, requires_grad=True)
    logits = head(feats)
    g = grad_cam(feats, logits[:, [2, 0]])
    cam = head.cam(feats.detach(), classes=[2, 0])
    assert not g.requires_grad and g.shape == (3, 2, 5, 7)
    assert torch.allclose(g, F.relu(cam) / 35, atol=1e-6)
    # hence equal to CAM after ReLU + max-normalisation
    norm = lambda m: m / m.flatten(2).max(-1).values[..., None, None]  # noqa: E731
    assert torch.allclose(norm(g), norm(F.relu(cam)), atol=1e-5)


def test_grad_cam_of_a_nonlinear_head_hand_computed():
    # y^c = Σ_k w_ck · mean_ij (A^k_ij)²  →  ∂y^c/∂A^k_ij = 2 w_ck A^k_ij / (h w)
    # α_k^c = 2 w_ck mean(A^k) / (h w): mean(c0) = 2.5, mean(c1) = 0.5, h w = 4
    feats = FEATURES.clone().requires_grad_(True)
    scores = (feats ** 2).mean(dim=(2, 3)) @ WEIGHT.t()
    g = grad_cam(feats, scores)
    # class 0: α = (2·1·2.5/4, 2·2·0.5/4) = (1.25, 0.5) → 1.25 c0 + 0.5 c1 = [[1.25, 3], [3.25, 6]]
    # class 1: α = (-1.25, 0.125) → -1.25 c0 + 0.125 c1 = [[-1.25, -2.375], [-3.875, -4.75]] → ReLU: 0
    assert torch.allclose(g[0, 0], torch.tensor([[1.25, 3.0], [3.25, 6.0]]))
    assert torch.equal(g[0, 1], torch.zeros(2, 2))


def test_grad_cam_needs_a_graph_and_keeps_it_only_when_asked():
    with pytest.raises(ValueError, match="require grad"):
        grad_cam(FEATURES, torch.zeros(1, 2))
    feats = FEATURES.clone().requires_grad_(True)
    scores = _head()(feats)
    grad_cam(feats, scores, retain_graph=True)
    scores.sum().backward()  # the graph is still there
    assert feats.grad is not None
    assert grad_cam(feats, scores[:, :0]).shape == (1, 0, 2, 2)


# ---------------------------------------------------------------- multi-scale + flip fusion
def test_fusion_undoes_the_flip_and_applies_relu_per_view():
    # channel 0 of the image: an antisymmetric ramp r_j = j - 3.5 (W = 8); compute = that channel.
    # view 0: ReLU(r); view 1 (flipped image): ReLU(-flip(r)), flipped back = ReLU(r). Sum: 2 ReLU(r) → / max.
    # (without undoing the flip: ReLU(r) + ReLU(-r) = |r|; without the per-view ReLU: 2r, negative on the left)
    ramp = torch.arange(8.0) - 3.5
    image = torch.stack([ramp.expand(4, 8), torch.zeros(4, 8), torch.zeros(4, 8)])
    seen = []

    def compute(batch):
        seen.append(batch.clone())
        return batch[:, :1]

    out = multiscale_cams(compute, image, scales=(1.0,), flip=True)
    assert len(seen) == 1 and seen[0].shape == (2, 3, 4, 8) and torch.equal(seen[0][1], seen[0][0].flip(-1))
    expected = F.relu(ramp) / (3.5 + 1e-5 / 2)  # 2 ReLU(r) / (2·3.5 + 1e-5)
    assert torch.allclose(out[0], expected.expand(4, 8), atol=1e-6)


def test_fusion_of_a_symmetric_input_is_symmetric():
    torch.manual_seed(0)
    half = torch.rand(3, 6, 4)
    image = torch.cat([half, half.flip(-1)], dim=-1)  # left-right symmetric, 6 × 8
    kernel = torch.tensor([[1.0, 2.0, 1.0], [0.0, 1.0, 0.0], [2.0, 3.0, 2.0]]).expand(2, 3, 3, 3)  # symmetric in x
    compute = lambda b: F.conv2d(b, kernel, padding=1) - 5  # noqa: E731
    out = multiscale_cams(compute, image, out_size=(6, 8))
    assert out.shape == (2, 6, 8)
    assert torch.allclose(out, out.flip(-1), atol=1e-5)


def test_fusion_sizes_normalisation_and_zero_classes():
    torch.manual_seed(0)
    image = torch.rand(3, 10, 13)
    sizes = []

    def compute(batch):
        sizes.append(tuple(batch.shape))
        pooled = F.avg_pool2d(batch, 2, ceil_mode=True)  # a stride-2 "backbone"
        return torch.cat([pooled[:, :1] + 1.0, -pooled[:, 1:2] - 1.0], dim=1)  # class 1 always negative

    out = multiscale_cams(compute, image, scales=(1.0, 0.5, 1.5, 2.0), out_size=(5, 7))
    # IRNet's sizes: (round(H s), round(W s)), image + flip batched, one call per scale
    assert sizes == [(2, 3, 10, 13), (2, 3, 5, 6), (2, 3, 15, 20), (2, 3, 20, 26)]
    assert out.shape == (2, 5, 7) and out.dtype == torch.float32
    assert abs(out[0].max().item() - 1) < 1e-4 and out.min() >= 0
    assert torch.equal(out[1], torch.zeros(5, 7))  # ReLU'd to zero: stays zero after the max-normalisation
    assert multiscale_cams(compute, image, scales=(1.0,), flip=False, out_size=(8, 9), crop_to=(7, 6)).shape == \
        (2, 7, 6)
    raw = multiscale_cams(compute, image, scales=(1.0,), flip=False, normalize=False)
    assert raw.shape == (2, 10, 13) and raw[0].max() > 1.5


def test_fusion_rejects_a_scale_below_one_pixel():
    with pytest.raises(ValueError, match="scale 0.25"):
        multiscale_cams(lambda b: b[:, :1], torch.rand(3, 1, 8), scales=(1.0, 0.25))
    with pytest.raises(ValueError, match="compute must return"):
        multiscale_cams(lambda b: b[:1, :1], torch.rand(3, 4, 4), scales=(1.0,))


# ---------------------------------------------------------------- stride arithmetic, prior
def test_strided_sizes():
    assert strided_size(7, 8, 4) == (2, 2) and strided_size(9, 16, 4) == (3, 4) and strided_size(1, 1, 16) == (1, 1)
    assert strided_up_size(9, 16, 4) == (12, 16)


def test_upsample_cams_resizes_then_crops_like_irnet():
    # 1×2 map [0, 1] at stride 2 → bilinear (align_corners=False) to 2×4: x_src = (x + 0.5)/2 - 0.5 (clamped)
    # = 0, 0.25, 0.75, 1 → [0, 0.25, 0.75, 1]; crop to width 3
    cams = torch.tensor([[[0.0, 1.0]]])
    out = upsample_cams(cams, 2, 3, 2)
    assert torch.allclose(out, torch.tensor([[[0.0, 0.25, 0.75], [0.0, 0.25, 0.75]]]))
    assert upsample_cams(torch.ones(3, 2, 2), 7, 5, 4).shape == (3, 7, 5)
    assert upsample_cams(torch.zeros(0, 2, 2), 7, 5, 4).shape == (0, 7, 5)
    with pytest.raises(ValueError, match="do not cover"):
        upsample_cams(cams, 3, 3, 2)


def test_center_gaussian_prior():
    g = center_gaussian_prior(5, 5, 3)
    assert g.shape == (3, 5, 5) and torch.equal(g[0], g[2]) and g[0, 2, 2] == 1
    assert g[0, 2, 0].item() == pytest.approx(math.exp(-4 / (2 * 1.25 ** 2)), rel=1e-6)  # σ = 0.25·5
    wide = center_gaussian_prior(5, 9, 1)  # σ per axis: 0.25·5 down, 0.25·9 across
    assert wide[0, 2, 0].item() == pytest.approx(math.exp(-16 / (2 * 2.25 ** 2)), rel=1e-6)
    assert wide[0, 0, 4].item() == pytest.approx(math.exp(-4 / (2 * 1.25 ** 2)), rel=1e-6)
    even = center_gaussian_prior(4, 6, 1, sigma=0.5)
    assert even.max().item() == pytest.approx(1.0) and torch.allclose(even, even.flip(-1)) and \
        torch.allclose(even, even.flip(-2))
    assert center_gaussian_prior(4, 6, 0).shape == (0, 4, 6)


# ---------------------------------------------------------------- loss and targets
def test_tags_to_targets_multi_hot_and_bad_class():
    t = tags_to_targets([[0, 2], [], [1, 1]], 3)
    assert torch.equal(t, torch.tensor([[1.0, 0, 1], [0, 0, 0], [0, 1, 0]]))
    with pytest.raises(ValueError, match=r"file\.jpg \(image id 7\)"):
        tags_to_targets([[0], [3]], 3, where=["a.jpg (image id 1)", "file.jpg (image id 7)"])
    with pytest.raises(ValueError, match="image 0"):
        tags_to_targets([[-1]], 3)


def test_loss_equals_torch_on_valid_rows():
    torch.manual_seed(0)
    logits = torch.randn(5, 4)
    targets = (torch.rand(5, 4) > 0.5).float()
    valid = torch.tensor([True, False, True, True, False])
    expected = F.multilabel_soft_margin_loss(logits[valid], targets[valid])
    assert torch.allclose(multilabel_soft_margin_loss(logits, targets, valid), expected, atol=1e-6)
    assert torch.allclose(multilabel_soft_margin_loss(logits, targets),
                          F.multilabel_soft_margin_loss(logits, targets), atol=1e-6)


def test_loss_hand_computed():
    # logits (0, 2), targets (1, 0): (-log σ(0) - log σ(-2)) / 2 = (log 2 + log(1 + e²)) / 2
    loss = multilabel_soft_margin_loss(torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx((math.log(2) + math.log(1 + math.e ** 2)) / 2, rel=1e-6)


def test_loss_without_valid_image_is_a_connected_zero():
    logits = torch.randn(2, 3, requires_grad=True)
    loss = multilabel_soft_margin_loss(logits, torch.zeros(2, 3), torch.tensor([False, False]))
    assert loss.item() == 0 and loss.requires_grad
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros(2, 3))
    empty = torch.zeros(0, 3, requires_grad=True)
    assert multilabel_soft_margin_loss(empty, torch.zeros(0, 3)).requires_grad


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_loss_raises_on_non_finite_logits(bad):
    logits = torch.tensor([[0.0, 1.0], [bad, 0.0]])
    with pytest.raises(FloatingPointError, match=r"\[1\]"):
        multilabel_soft_margin_loss(logits, torch.zeros(2, 2), torch.tensor([True, False]))
