import pytest
import torch
from torch import nn

from wsis.methods.boxcaseg.heads import BoxCasegHeads, WeightTransfer, salient_probability, upsample_to


def _heads(c=4, alpha=0.7):
    torch.manual_seed(0)
    return BoxCasegHeads(c, alpha=alpha)


def test_weight_transfer_structure_and_shape():
    wt = WeightTransfer(6)
    assert (wt.fc1.in_features, wt.fc1.out_features) == (6, 24)
    assert (wt.fc2.in_features, wt.fc2.out_features) == (24, 6)
    assert isinstance(wt.act, nn.LeakyReLU) and wt.act.negative_slope == 0.1
    w = torch.randn(1, 6, 1, 1)
    out = wt(w)
    assert out.shape == (1, 6, 1, 1)
    expected = wt.fc2(torch.nn.functional.leaky_relu(wt.fc1(w.view(1, 6)), 0.1)).view(1, 6, 1, 1)
    assert torch.allclose(out, expected)
    for bad in (torch.randn(6), torch.randn(1, 5, 1, 1), torch.randn(1, 6, 3, 3)):
        with pytest.raises(ValueError):
            wt(bad)


def _mlp_by_hand(wt, rows):
    """The transfer MLP written out: rows (K, C) → fc2(leaky_relu(fc1(rows), 0.1)) with explicit matrix products."""
    hidden = rows @ wt.fc1.weight.T + wt.fc1.bias
    hidden = torch.where(hidden > 0, hidden, 0.1 * hidden)
    return hidden @ wt.fc2.weight.T + wt.fc2.bias


def test_forward_shapes_and_transferred_is_the_mlp_of_the_weak_weight():
    heads = _heads(4)
    x = torch.randn(2, 4, 5, 6)
    out = heads(x)
    assert set(out) == {"weak", "salient", "transferred"}
    assert all(v.shape == (2, 1, 5, 6) for v in out.values())
    with torch.no_grad():
        w = _mlp_by_hand(heads.weight_transfer, heads.weak.weight.view(1, 4))  # (1, 4)
        expected = torch.einsum("bchw,c->bhw", x, w[0])[:, None] + heads.transferred_bias
    assert torch.allclose(out["transferred"], expected, atol=1e-6)
    up = heads(x, output_size=(10, 12))
    assert all(v.shape == (2, 1, 10, 12) for v in up.values())
    with pytest.raises(ValueError):
        heads(torch.randn(2, 3, 5, 6))
    with pytest.raises(ValueError):
        heads(torch.randn(4, 5, 6))


def _official(c=3, alpha=0.7):
    torch.manual_seed(1)
    heads = BoxCasegHeads(c, alpha=alpha, layers=2, norm_layer=nn.BatchNorm2d, transfer_bias="affine", mix="logit")
    with torch.no_grad():  # non-trivial bias parameters, so a wrong formula shows
        for wt, (k, b0) in ((heads.weight_transfer, (1.5, 0.2)), (heads.weight_transfer_out, (0.5, -0.3))):
            wt.k.fill_(k)
            wt.b0.fill_(b0)
    return heads.eval()  # BN in eval mode: fixed statistics (mean 0, var 1 at start) for the hand computation


def test_official_two_layer_heads_transfer_both_convs_and_biases():
    heads = _official(3)
    assert isinstance(heads.weak, nn.Sequential) and [type(m) for m in heads.weak] == [
        nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Conv2d]
    assert heads.weak[0].weight.shape == (3, 3, 1, 1) and heads.weak[3].weight.shape == (1, 3, 1, 1)
    x = torch.randn(2, 3, 4, 4)
    out = heads(x)
    with torch.no_grad():
        w1, b1 = heads.weak[0].weight.view(3, 3), heads.weak[0].bias
        w2, b2 = heads.weak[3].weight.view(1, 3), heads.weak[3].bias
        t1 = _mlp_by_hand(heads.weight_transfer, w1)  # each of the 3 output filters mapped by the first MLP
        t2 = _mlp_by_hand(heads.weight_transfer_out, w2)
        eps = heads.transfer_norm.eps
        hidden = torch.einsum("bchw,oc->bohw", x, t1) + (1.5 * b1 + 0.2)[None, :, None, None]
        hidden = (hidden / (1 + eps) ** 0.5).clamp(min=0)  # BN at its initial statistics, then ReLU
        expected = torch.einsum("bchw,oc->bohw", hidden, t2) + (0.5 * b2 - 0.3)
        weak = torch.einsum("bchw,oc->bohw", (torch.einsum("bchw,oc->bohw", x, w1) + b1[None, :, None, None]
                                              ).div((1 + eps) ** 0.5).clamp(min=0), w2) + b2
    assert torch.allclose(out["transferred"], expected, atol=1e-5)
    assert torch.allclose(out["weak"], weak, atol=1e-5)
    # the logits are mixed, then the sigmoid: σ(0.7·S + 0.3·T), not 0.7·σ(S) + 0.3·σ(T)
    p = heads.predict(x)
    assert torch.allclose(p, (0.7 * out["salient"] + 0.3 * out["transferred"]).sigmoid(), atol=1e-6)
    assert not torch.allclose(p, 0.7 * out["salient"].sigmoid() + 0.3 * out["transferred"].sigmoid(), atol=1e-3)


def test_official_transfer_gives_no_gradient_to_the_weak_head():
    heads = _official(3).train()
    x = torch.randn(2, 3, 3, 3, requires_grad=True)
    heads(x)["transferred"].square().mean().backward()
    for p in heads.weak.parameters():
        assert p.grad is None or torch.count_nonzero(p.grad) == 0
    for wt in (heads.weight_transfer, heads.weight_transfer_out):
        for p in wt.parameters():
            assert p.grad is not None and torch.count_nonzero(p.grad) > 0, "MLPs, k and b0 learn"
    assert heads.transfer_norm.weight.grad is not None and x.grad.abs().sum() > 0


def test_variant_arguments_are_checked():
    for kwargs in ({"layers": 3}, {"transfer_bias": "mine"}, {"mix": "max"}):
        with pytest.raises(ValueError):
            BoxCasegHeads(4, **kwargs)
    with pytest.raises(ValueError):
        salient_probability(torch.zeros(1), torch.zeros(1), 0.5, mix="max")


def test_upsample_to_bilinear_half_pixel():
    x = torch.tensor([[[[0.0, 1.0]]]])  # (1, 1, 1, 2)
    out = upsample_to(x, (1, 4))
    # align_corners=False: output centres map to -0.25, 0.25, 0.75, 1.25 → clamped linear interpolation
    assert torch.allclose(out, torch.tensor([[[[0.0, 0.25, 0.75, 1.0]]]]))
    assert upsample_to(x, (1, 2)) is x
    assert upsample_to(torch.zeros(1, 1, 2, 2), 8).shape == (1, 1, 8, 8)
    with pytest.raises(ValueError):
        upsample_to(torch.zeros(2, 2), 4)


def test_salient_probability_values():
    s, t = torch.tensor([0.0, 2.0]), torch.tensor([2.0, 0.0])
    p = salient_probability(s, t, 0.7)
    expected = 0.7 * s.sigmoid() + 0.3 * t.sigmoid()
    assert torch.allclose(p, expected)
    assert torch.allclose(p[0], torch.tensor(0.7 * 0.5 + 0.3 * 0.8807970779778823))
    assert torch.equal(salient_probability(s, t, 1.0), s.sigmoid())
    assert torch.equal(salient_probability(s, t, 0.0), t.sigmoid())
    with pytest.raises(ValueError):
        salient_probability(s, t, 1.5)
    with pytest.raises(ValueError):
        salient_probability(s, t[:1], 0.5)
    with pytest.raises(ValueError):
        BoxCasegHeads(4, alpha=-0.1)


def test_predict_is_the_mixture_at_output_size():
    heads = _heads(4, alpha=0.6)
    x = torch.randn(3, 4, 4, 4)
    out = heads(x, output_size=8)
    with torch.no_grad():
        p = heads.predict(x, output_size=8)
    assert p.shape == (3, 1, 8, 8)
    assert torch.allclose(p, 0.6 * out["salient"].sigmoid() + 0.4 * out["transferred"].sigmoid())
    assert float(p.min()) >= 0 and float(p.max()) <= 1


def test_transferred_loss_gives_no_gradient_to_weak_weight():
    heads = _heads(4)
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = heads(x, output_size=6)
    out["transferred"].square().mean().backward()
    assert heads.weak.weight.grad is None or torch.count_nonzero(heads.weak.weight.grad) == 0
    assert heads.weak.bias.grad is None or torch.count_nonzero(heads.weak.bias.grad) == 0
    assert heads.salient.weight.grad is None
    for p in list(heads.weight_transfer.parameters()) + [heads.transferred_bias]:
        assert p.grad is not None and torch.count_nonzero(p.grad) > 0
    assert x.grad is not None and torch.count_nonzero(x.grad) > 0  # the features still learn from it


def test_weak_loss_trains_weak_head_only():
    heads = _heads(4)
    out = heads(torch.randn(2, 4, 3, 3))
    out["weak"].sum().backward()
    assert torch.count_nonzero(heads.weak.weight.grad) > 0
    assert all(p.grad is None for p in heads.weight_transfer.parameters())
