import math

import pytest
import torch
import torch.nn.functional as F

from wsis.methods.bbtp.losses import mil_bag_loss, mil_pairwise_loss
from wsis.methods.boxcaseg.losses import boxcaseg_losses, boxcaseg_mil_loss, mixed_pixel_loss


def _sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def _sp(x):
    return math.log1p(math.exp(x))


S = [[0.0, 2.0], [-1.0, 3.0]]
T = [[1.0, 0.0], [0.0, -2.0]]
M = [[1, 0], [0, 1]]


def _hand_pixel_loss(alpha):
    total = 0.0
    for i in range(2):
        for j in range(2):
            p = alpha * _sig(S[i][j]) + (1 - alpha) * _sig(T[i][j])
            total += -math.log(p) if M[i][j] else -math.log(1 - p)
    return total / 4


def _t(rows, dtype=torch.float64, grad=False):
    return torch.tensor([rows], dtype=dtype, requires_grad=grad)


def test_mil_loss_hand_computed():
    logits = _t([[2.0, -1.0], [0.0, 1.0]])
    box = torch.tensor([[[True, False], [False, False]]])
    # rows: row 0 positive (max 2), row 1 negative (max 1); columns: col 0 positive (max 2), col 1 negative (max 1)
    unary = (2 * _sp(-2.0) + 2 * _sp(1.0)) / 4
    p = [_sig(2.0), _sig(-1.0), _sig(0.0), _sig(1.0)]
    # on a 2×2 grid every pixel neighbours the 3 others: the mean over ordered pairs is the mean over the 6 pairs
    pairwise = sum((p[a] - p[b]) ** 2 for a in range(4) for b in range(a + 1, 4)) / 6
    loss = boxcaseg_mil_loss(logits, box)
    assert math.isclose(loss.item(), unary + 0.05 * pairwise, rel_tol=1e-12)
    assert math.isclose(boxcaseg_mil_loss(logits, box, pairwise_weight=0.0).item(), unary, rel_tol=1e-12)


def test_mil_loss_is_the_box_supervised_loss():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 7)
    box = torch.zeros(3, 5, 7, dtype=torch.bool)
    box[:, 1:4, 2:6] = True
    expected = mil_bag_loss(logits, box) + 0.2 * mil_pairwise_loss(logits)
    assert torch.allclose(boxcaseg_mil_loss(logits, box, 0.2), expected)
    empty = torch.zeros(0, 5, 7, requires_grad=True)
    out = boxcaseg_mil_loss(empty, box[:0])
    assert out.item() == 0.0 and out.requires_grad
    with pytest.raises(ValueError):
        boxcaseg_mil_loss(logits, box[:, :4])


@pytest.mark.parametrize("alpha", [0.7, 0.6, 0.3])
def test_pixel_loss_hand_computed(alpha):
    loss = mixed_pixel_loss(_t(S), _t(T), torch.tensor([M], dtype=torch.bool), alpha)
    assert math.isclose(loss.item(), _hand_pixel_loss(alpha), rel_tol=1e-12)


def test_pixel_loss_gradient_matches_autograd_of_naive_formula():
    s, t = _t(S, grad=True), _t(T, grad=True)
    m = torch.tensor([M], dtype=torch.float64)
    mixed_pixel_loss(s, t, m, 0.7).backward()
    s2, t2 = _t(S, grad=True), _t(T, grad=True)
    p = 0.7 * s2.sigmoid() + 0.3 * t2.sigmoid()
    F.binary_cross_entropy(p, m).backward()
    assert torch.allclose(s.grad, s2.grad) and torch.allclose(t.grad, t2.grad)


@pytest.mark.parametrize("alpha,used,ignored", [(1.0, "s", "t"), (0.0, "t", "s")])
def test_pixel_loss_alpha_extremes_ignore_one_head(alpha, used, ignored):
    logits = {"s": _t(S, grad=True), "t": _t(T, grad=True)}
    m = torch.tensor([M], dtype=torch.float64)
    loss = mixed_pixel_loss(logits["s"], logits["t"], m, alpha)
    assert torch.isfinite(loss)
    assert math.isclose(loss.item(), _hand_pixel_loss(alpha), rel_tol=1e-12)
    assert torch.allclose(loss, F.binary_cross_entropy_with_logits(logits[used], m))
    loss.backward()
    assert torch.isfinite(logits[used].grad).all() and torch.count_nonzero(logits[used].grad) == 4
    assert torch.equal(logits[ignored].grad, torch.zeros_like(logits[ignored].grad))
    # changing the ignored head's logits does not change the loss
    other = {k: v.detach().clone() for k, v in logits.items()}
    other[ignored] = other[ignored] * -7 + 3
    assert torch.allclose(mixed_pixel_loss(other["s"], other["t"], m, alpha), loss.detach())


def test_pixel_loss_is_stable_for_saturated_logits():
    s = torch.tensor([[[-100.0, 100.0]]], requires_grad=True)  # float32: the naive log(p) would be log(0) = -inf
    t = torch.tensor([[[-100.0, 100.0]]], requires_grad=True)
    m = torch.tensor([[[1.0, 0.0]]])
    loss = mixed_pixel_loss(s, t, m, 0.7)
    # pixel 0: p ≈ e^-100 → -log p ≈ 100; pixel 1: 1 - p ≈ e^-100 → 100
    assert math.isclose(loss.item(), 100.0, rel_tol=1e-5)
    loss.backward()
    assert torch.isfinite(s.grad).all() and torch.isfinite(t.grad).all()
    for alpha in (0.0, 1.0):
        s.grad = t.grad = None
        loss = mixed_pixel_loss(s, t, m, alpha)
        loss.backward()
        assert math.isclose(loss.item(), 100.0, rel_tol=1e-5)
        assert torch.isfinite(s.grad).all() and torch.isfinite(t.grad).all()


def test_logit_mix_pixel_loss_hand_computed():
    alpha = 0.7
    total = 0.0
    for i in range(2):
        for j in range(2):
            p = _sig(alpha * S[i][j] + (1 - alpha) * T[i][j])
            total += -math.log(p) if M[i][j] else -math.log(1 - p)
    loss = mixed_pixel_loss(_t(S), _t(T), _t(M), alpha, mix="logit")
    assert loss.item() == pytest.approx(total / 4, rel=1e-9)
    assert loss.item() != pytest.approx(_hand_pixel_loss(alpha), rel=1e-3), "not the probability mixture"
    with pytest.raises(ValueError, match="mix"):
        mixed_pixel_loss(_t(S), _t(T), _t(M), alpha, mix="max")


def test_pixel_loss_empty_and_bad_inputs():
    s = torch.zeros(0, 4, 4, requires_grad=True)
    t = torch.zeros(0, 4, 4, requires_grad=True)
    out = mixed_pixel_loss(s, t, torch.zeros(0, 4, 4), 0.7)
    assert out.item() == 0.0 and out.requires_grad
    out.backward()
    x = torch.zeros(1, 2, 2)
    with pytest.raises(ValueError):
        mixed_pixel_loss(x, x, x, 1.01)
    with pytest.raises(ValueError):
        mixed_pixel_loss(x, torch.zeros(1, 2, 3), x)
    with pytest.raises(ValueError):
        mixed_pixel_loss(x, x, torch.zeros(2, 2))
    with pytest.raises(ValueError):
        mixed_pixel_loss(torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(2, 2))


def _batch(n=3, h=4, w=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    outputs = {k: torch.randn(n, 1, h, w, generator=g, dtype=torch.float64, requires_grad=True)
               for k in ("weak", "salient", "transferred")}
    box = torch.zeros(n, h, w, dtype=torch.bool)
    box[:, 1:3, 1:4] = True
    masks = torch.rand(n, h, w, generator=g) > 0.5
    return outputs, box, masks


def test_boxcaseg_losses_pixel_loss_only_on_salient_samples():
    outputs, box, masks = _batch()
    is_salient = torch.tensor([False, True, True])
    losses = boxcaseg_losses(outputs, box, masks, is_salient, alpha=0.6, pairwise_weight=0.05)
    assert set(losses) == {"loss_mil", "loss_pixel"}
    assert torch.allclose(losses["loss_mil"], boxcaseg_mil_loss(outputs["weak"][:, 0], box))
    expected = mixed_pixel_loss(outputs["salient"][1:, 0], outputs["transferred"][1:, 0], masks[1:], 0.6)
    assert torch.allclose(losses["loss_pixel"], expected)
    losses["loss_pixel"].backward()
    assert torch.count_nonzero(outputs["salient"].grad[0]) == 0
    assert torch.count_nonzero(outputs["transferred"].grad[0]) == 0
    assert torch.count_nonzero(outputs["salient"].grad[1:]) > 0
    assert outputs["weak"].grad is None
    # the box sample's salient mask is never read
    masks2 = masks.clone()
    masks2[0] = ~masks2[0]
    assert torch.allclose(boxcaseg_losses(outputs, box, masks2, is_salient, 0.6)["loss_pixel"], expected)


def test_boxcaseg_losses_without_salient_samples_and_3d_logits():
    outputs, box, masks = _batch()
    flat = {k: v[:, 0] for k, v in outputs.items()}
    losses = boxcaseg_losses(flat, box, masks, torch.zeros(3, dtype=torch.bool))
    assert losses["loss_pixel"].item() == 0.0 and losses["loss_pixel"].requires_grad
    (losses["loss_mil"] + losses["loss_pixel"]).backward()
    assert torch.count_nonzero(outputs["weak"].grad) > 0
    empty = {k: v[:0] for k, v in flat.items()}
    out = boxcaseg_losses(empty, box[:0], masks[:0], torch.zeros(0, dtype=torch.bool))
    assert out["loss_mil"].item() == 0.0 and out["loss_pixel"].item() == 0.0


def test_boxcaseg_losses_bad_inputs():
    outputs, box, masks = _batch()
    is_salient = torch.tensor([False, True, True])
    with pytest.raises(KeyError):
        boxcaseg_losses({"weak": outputs["weak"]}, box, masks, is_salient)
    with pytest.raises(ValueError):
        boxcaseg_losses(outputs, box, masks, is_salient[:2])
    with pytest.raises(ValueError):
        boxcaseg_losses(outputs, box, masks[:, :3], is_salient)
    with pytest.raises(ValueError):
        boxcaseg_losses(dict(outputs, salient=outputs["salient"][:2]), box, masks, is_salient)
    with pytest.raises(ValueError):
        boxcaseg_losses(outputs, box[:, :3], masks, is_salient)
