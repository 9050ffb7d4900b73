"""IRNet's pair indexing (Eq. 2), path affinities (Eq. 7), pair labels (Eqs. 3–4) and losses (Eqs. 5, 6, 8)."""
import math

import pytest
import torch

from wsis.methods.irnet.losses import EPS, affinity_loss, displacement_loss, irnet_losses, pair_labels
from wsis.methods.irnet.paths import PairIndex, directions, path_points


@pytest.mark.parametrize("radius", [2, 5, 10, 4.5])
def test_directions_are_every_pair_once(radius):
    full = {(dy, dx) for dy in range(-11, 12) for dx in range(-11, 12) if 0 < dy * dy + dx * dx < radius * radius}
    half = directions(radius)
    assert len(half) == len(set(half)) == len(full) // 2
    assert set(half) | {(-dy, -dx) for dy, dx in half} == full
    assert not set(half) & {(-dy, -dx) for dy, dx in half}


def test_direction_counts_by_hand():
    # radius 2: (0, 1), (1, -1), (1, 0), (1, 1); radius 5: the 68 lattice points 0 < r² < 25, halved
    assert directions(2) == ((0, 1), (1, -1), (1, 0), (1, 1))
    assert len(directions(5)) == 34
    with pytest.raises(ValueError, match="radius"):
        directions(1)


def test_path_points_by_hand():
    assert path_points((0, 3)) == ((0, 0), (0, 1), (0, 2), (0, 3))
    assert path_points((2, 0)) == ((0, 0), (1, 0), (2, 0))
    # (1, 2): (dy·x − dx·y)² < 5 over the box y 0..1, x 0..2: all but (0, 2)? (1·2 − 0)² = 4 < 5 keeps it; (1, 0): 4
    assert set(path_points((1, 2))) == {(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)}
    # a long diagonal passes through the diagonal cells and their 4-neighbours at distance 1/√2 only
    assert set(path_points((2, 2))) == {(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 1), (2, 2)}
    assert set(path_points((1, -2))) == {(0, 0), (0, -1), (0, -2), (1, 0), (1, -1), (1, -2)}


def test_affinity_is_one_minus_path_max():
    index = PairIndex(3)
    b = torch.zeros(1, 5)
    b[0, 2] = 0.8  # a boundary pixel in the middle of a 1 × 5 grid
    aff = index.affinities(b)  # (K, 1, 5)
    k = index.directions.index((0, 1))
    assert aff[k, 0].tolist() == pytest.approx([1.0, 0.2, 0.2, 1.0, 0.0])  # the last pair leaves the grid
    k2 = index.directions.index((0, 2))
    assert aff[k2, 0].tolist() == pytest.approx([0.2, 0.2, 0.2, 0.0, 0.0])
    # every pair going down leaves a one-row grid: affinity 0
    assert aff[index.directions.index((1, 0))].abs().max() == 0
    assert index.in_bounds(1, 5)[k].tolist() == [[True, True, True, True, False]]


def test_pair_labels_by_hand():
    index = PairIndex(2)
    labels = torch.tensor([[[0, 0, 1, 255]]])
    p = pair_labels(labels, index)
    k = index.directions.index((0, 1))
    assert p.bg_pos[0, k, 0].tolist() == [True, False, False, False]
    assert p.neg[0, k, 0].tolist() == [False, True, False, False]
    assert not p.fg_pos.any()
    assert int(p.bg_pos.sum() + p.neg.sum()) == 2  # (2, 3) touches ignore; the others leave the grid
    two_rows = torch.tensor([[[1, 1], [1, 2]]])
    q = pair_labels(two_rows, index)
    assert int(q.fg_pos.sum()) == 3 and int(q.neg.sum()) == 3 and not q.bg_pos.any()
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        pair_labels(torch.zeros(4, 4), index)


def _radial_field(h, w, cy, cx):
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.stack([cy - ys, cx - xs])


def test_displacement_loss_is_zero_for_a_perfect_field():
    index = PairIndex(3)
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[0, 1:6, 1:6] = 1
    d = torch.zeros(1, 2, 8, 8)
    d[0][:, 1:6, 1:6] = _radial_field(8, 8, 3.0, 3.0)[:, 1:6, 1:6]  # points at the instance's centroid, 0 on bg
    p = pair_labels(labels, index)
    assert p.fg_pos.any() and p.bg_pos.any()
    loss = displacement_loss(d, p, index)
    assert float(loss["fg"]) == pytest.approx(0, abs=1e-6) and float(loss["bg"]) == pytest.approx(0, abs=1e-6)


def test_displacement_loss_by_hand():
    index = PairIndex(2)
    labels = torch.tensor([[[1, 1, 0]]])  # pairs: (0,0)-(0,1) foreground, (0,1)-(0,2) negative
    d = torch.tensor([[[[0.0, 0.0, 3.0]], [[1.0, 1.0, -2.0]]]])  # constant on the fg pixels: δ = 0, δ̂ = (0, 1)
    loss = displacement_loss(d, pair_labels(labels, index), index)
    assert float(loss["fg"]) == pytest.approx((0 + 1) / 2 / (1 + EPS))
    assert float(loss["bg"]) == 0.0  # no bg pair
    bg = displacement_loss(d, pair_labels(torch.tensor([[[9, 0, 0]]]), index), index)
    assert float(bg["bg"]) == pytest.approx((abs(0 - 3) + abs(1 + 2)) / 2 / (1 + EPS))


def test_affinity_loss_by_hand_and_its_gradient():
    index = PairIndex(2)
    labels = torch.tensor([[[0, 0, 1, 1]]])
    logits = torch.zeros(1, 1, 1, 4, requires_grad=True)  # B = 0.5 everywhere: a = 0.5 on every in-bounds pair
    out = irnet_losses(logits, torch.zeros(1, 2, 1, 4), labels, index)
    a = 0.5
    fg = bg = -math.log(a + EPS) / (1 + EPS)
    neg = -math.log(1 + EPS - a) / (1 + EPS)
    assert float(out["loss_irnet_boundary"]) == pytest.approx(0.5 * (fg / 2 + bg / 2 + neg), rel=1e-5)
    out["loss_irnet_boundary"].backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    # a boundary on the negative pair's path, none elsewhere: loss ≈ 0
    sharp = torch.tensor([[[[-20.0, -20.0, 20.0, -20.0]]]])
    parts = affinity_loss(index.affinities(torch.sigmoid(sharp[:, 0])), pair_labels(labels, index))
    assert float(parts["bg_pos"]) < 1e-3 and float(parts["neg"]) < 1e-3
    assert float(parts["fg_pos"]) > 5  # the fg pair (2, 3) crosses the boundary pixel 2 itself


def test_losses_without_pairs_are_zero_with_a_graph():
    index = PairIndex(5)
    logits = torch.zeros(2, 1, 6, 6, requires_grad=True)
    disp = torch.zeros(2, 2, 6, 6, requires_grad=True)
    out = irnet_losses(logits, disp, torch.full((2, 6, 6), 255), index)
    total = out["loss_irnet_boundary"] + out["loss_irnet_displacement"]
    assert float(total) == 0.0
    total.backward()
    assert logits.grad is not None and disp.grad is not None


def test_losses_refuse_mismatched_grids():
    with pytest.raises(ValueError, match="one grid"):
        irnet_losses(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 4), torch.zeros(1, 5, 4), PairIndex(2))
