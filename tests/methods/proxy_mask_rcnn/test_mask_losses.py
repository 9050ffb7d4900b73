import math

import pytest
import torch

from wsis.methods.proxy_mask_rcnn.losses import weak_mask_rcnn_loss


def _sp(x):  # softplus: BCE-with-logits of target 1 at logit x is softplus(-x), of target 0 is softplus(x)
    return math.log1p(math.exp(x))


def make_inputs():
    logits = torch.zeros(2, 2, 2, 2)
    logits[0, 1] = torch.tensor([[2.0, -1.0], [0.0, 1.0]])
    logits[0, 0] = 5.0  # other class of instance 0: must not matter
    logits[1] = 3.0  # instance 1 is invalid
    logits.requires_grad_(True)
    classes = torch.tensor([1, 0])
    targets = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]])
    valid = torch.tensor([True, False])
    ignore = torch.zeros(2, 2, 2, dtype=torch.bool)
    ignore[0, 1, 1] = True
    return logits, classes, targets, valid, ignore


def test_hand_computed_value_and_gradients():
    logits, classes, targets, valid, ignore = make_inputs()
    loss, stats = weak_mask_rcnn_loss(logits, classes, targets, valid, ignore)
    expected = (_sp(-2.0) + _sp(-1.0) + _sp(0.0)) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    g = logits.grad
    assert torch.all(g[1] == 0), "invalid instance must get no gradient"
    assert torch.all(g[0, 0] == 0), "other classes get no gradient"
    assert g[0, 1, 1, 1] == 0, "ignored pixel gets no gradient"
    assert g[0, 1, 0, 0] < 0 and g[0, 1, 1, 0] < 0  # positives pushed up
    assert g[0, 1, 0, 1] > 0  # negative pushed down
    assert stats["num_valid"] == 1 and stats["ignored_fraction"] == pytest.approx(0.25)
    assert stats["accuracy"] == pytest.approx(2 / 3)  # logit 0 at a positive pixel is a miss


def test_equals_plain_bce_when_everything_counts():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 5, 5)
    classes = torch.tensor([0, 3, 2])
    targets = (torch.rand(3, 5, 5) > 0.5).float()
    loss, _ = weak_mask_rcnn_loss(logits, classes, targets, torch.ones(3, dtype=torch.bool))
    ref = torch.nn.functional.binary_cross_entropy_with_logits(logits[torch.arange(3), classes], targets)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)


def test_class_agnostic_matches_class_specific():
    torch.manual_seed(1)
    logits = torch.randn(4, 1, 6, 6)
    classes = torch.tensor([3, 0, 2, 1])
    spec = torch.randn(4, 5, 6, 6)
    spec[torch.arange(4), classes] = logits[:, 0]
    targets = (torch.rand(4, 6, 6) > 0.5).float()
    valid = torch.tensor([True, False, True, True])
    a, _ = weak_mask_rcnn_loss(logits, classes, targets, valid)
    b, _ = weak_mask_rcnn_loss(spec, classes, targets, valid)
    assert a.item() == pytest.approx(b.item(), rel=1e-6)


def test_instance_normalization():
    logits, classes, targets, valid, ignore = make_inputs()
    valid = torch.tensor([True, True])
    loss, _ = weak_mask_rcnn_loss(logits, classes, targets, valid, ignore, normalization="instances")
    inst0 = (_sp(-2.0) + _sp(-1.0) + _sp(0.0)) / 3
    inst1 = _sp(-3.0)  # instance 1: logit 3 at four positive pixels
    assert loss.item() == pytest.approx((inst0 + inst1) / 2, rel=1e-6)


@pytest.mark.parametrize("n", [0, 3])
def test_nothing_counts_returns_connected_zero(n):
    logits = torch.randn(n, 2, 4, 4, requires_grad=True)
    loss, stats = weak_mask_rcnn_loss(
        logits, torch.zeros(n, dtype=torch.long), torch.zeros(n, 4, 4), torch.zeros(n, dtype=torch.bool)
    )
    assert loss.item() == 0 and loss.requires_grad
    loss.backward()
    assert torch.all(logits.grad == 0)
    assert stats["num_valid"] == 0


def test_all_pixels_ignored():
    logits, classes, targets, valid, _ = make_inputs()
    loss, _ = weak_mask_rcnn_loss(logits, classes, targets, valid, torch.ones(2, 2, 2, dtype=torch.bool))
    assert loss.item() == 0 and loss.requires_grad


def test_bad_inputs():
    logits, classes, targets, valid, ignore = make_inputs()
    with pytest.raises(ValueError, match="disagree"):
        weak_mask_rcnn_loss(logits, classes, targets[:1], valid)
    with pytest.raises(ValueError, match="normalization"):
        weak_mask_rcnn_loss(logits, classes, targets, valid, normalization="batch")
