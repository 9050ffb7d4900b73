import math

import cv2
import numpy as np
import pytest
import torch

from wsis.methods.bbtp.losses import (
    box_to_grid_mask,
    color_similarity,
    mil_bag_loss,
    mil_pairwise_loss,
    neighbour_offsets,
    pairwise_color_loss,
    projection_loss,
    warmup_factor,
)
from wsis.core.color import rgb_to_lab
from wsis.methods.proxy_mask_rcnn.losses import select_class_logits


def _sp(x):  # softplus: BCE-with-logits of target 1 at logit x is softplus(-x), of target 0 is softplus(x)
    return math.log1p(math.exp(x))


def _sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def _grid(gt, proposal, m=4):
    return box_to_grid_mask(torch.tensor([gt], dtype=torch.float32), torch.tensor([proposal], dtype=torch.float32),
                            m)[0]


def _mask(rows):
    return torch.tensor(rows, dtype=torch.bool)


# ---------------------------------------------------------------- box_to_grid_mask
# proposal [0, 8]², M = 4: cell centres at 1, 3, 5, 7


def test_grid_box_equal_to_proposal_is_all_true():
    assert _grid([2, 3, 10, 9], [2, 3, 10, 9]).all()


def test_grid_box_in_left_half_marks_left_columns():
    expected = _mask([[1, 1, 0, 0]] * 4)
    assert torch.equal(_grid([0, 0, 4, 8], [0, 0, 8, 8]), expected)


def test_grid_box_touching_the_border():
    expected = _mask([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]])
    assert torch.equal(_grid([6, 2, 8, 6], [0, 0, 8, 8]), expected)  # shares the right edge
    assert torch.equal(_grid([6, 2, 20, 6], [0, 0, 8, 8]), expected)  # crosses it


def test_grid_box_larger_than_proposal_is_all_true():
    assert _grid([-5, -5, 20, 20], [0, 0, 8, 8]).all()


def test_grid_box_outside_is_all_false():
    assert not _grid([10, 10, 20, 20], [0, 0, 8, 8]).any()
    assert not _grid([0, 9, 8, 12], [0, 0, 8, 8]).any()  # overlaps in x only


def test_grid_partial_overlap_and_centre_on_edge_counts():
    expected = _mask([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert torch.equal(_grid([-4, -4, 3, 3], [0, 0, 8, 8]), expected)  # centre 3 on the box edge is inside
    assert torch.equal(_grid([-4, -4, 2.9, 2.9], [0, 0, 8, 8]), _mask([[1, 0, 0, 0]] + [[0, 0, 0, 0]] * 3))


def test_grid_box_thinner_than_a_cell_keeps_the_cell_holding_it():
    expected = _mask([[0, 1, 0, 0]] * 4)  # x in [2.2, 2.8] holds no centre; its middle 2.5 lies in cell 1
    assert torch.equal(_grid([2.2, 0, 2.8, 8], [0, 0, 8, 8]), expected)


def test_grid_non_square_proposal_and_rows_follow_y():
    # proposal 16 wide, 4 high, M = 4: x centres 2, 6, 10, 14; y centres 0.5, 1.5, 2.5, 3.5
    expected = _mask([[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0]])
    assert torch.equal(_grid([5, 2, 11, 4], [0, 0, 16, 4]), expected)


def test_grid_degenerate_proposals():
    assert _grid([0, 0, 8, 8], [4, 4, 4, 4]).all()  # a point inside the box
    assert not _grid([0, 0, 8, 8], [9, 4, 9, 4]).any()  # a point outside
    assert torch.equal(_grid([0, 0, 8, 8], [4, 2, 4, 12]), _mask([[1] * 4, [1] * 4, [0] * 4, [0] * 4]))  # zero width


def test_grid_batch_shape_and_errors():
    gt = torch.tensor([[0.0, 0, 4, 8], [0, 0, 8, 8], [20, 20, 30, 30]])
    props = torch.tensor([[0.0, 0, 8, 8]] * 3)
    masks = box_to_grid_mask(gt, props, 28)
    assert masks.shape == (3, 28, 28) and masks.dtype == torch.bool
    assert masks[0, :, :14].all() and not masks[0, :, 14:].any() and masks[1].all() and not masks[2].any()
    assert box_to_grid_mask(torch.zeros(0, 4), torch.zeros(0, 4), 28).shape == (0, 28, 28)
    with pytest.raises(ValueError, match="N, 4"):
        box_to_grid_mask(gt, props[:2], 28)


# ---------------------------------------------------------------- MIL bags (Eq. 1 unary)

LOGITS_4 = [
    [2.0, -1.0, 0.5, 3.0],
    [-2.0, 1.0, -0.5, 0.0],
    [0.0, -3.0, -1.0, -2.0],
    [1.5, 0.2, -0.3, -4.0],
]
BOX_4 = [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]  # rows 0-1 and columns 0-1 are positive bags


def test_mil_hand_computed_whole_row_max():
    logits = torch.tensor([LOGITS_4])
    loss = mil_bag_loss(logits, _mask([BOX_4]))
    # row maxima 3, 1, 0, 1.5 (rows 0, 1 positive); column maxima 2, 1, 0.5, 3 (columns 0, 1 positive)
    expected = (_sp(-3.0) + _sp(-1.0) + _sp(0.0) + _sp(1.5) + _sp(-2.0) + _sp(-1.0) + _sp(0.5) + _sp(3.0)) / 8
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_mil_hand_computed_positive_within_box():
    logits = torch.tensor([LOGITS_4])
    loss = mil_bag_loss(logits, _mask([BOX_4]), positive_within_box=True)
    # positive bags now take the max over cells 0-1: row 0 → 2, row 1 → 1, column 0 → 2, column 1 → 1
    expected = (_sp(-2.0) + _sp(-1.0) + _sp(0.0) + _sp(1.5) + _sp(-2.0) + _sp(-1.0) + _sp(0.5) + _sp(3.0)) / 8
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_mil_box_larger_than_proposal_makes_all_bags_positive():
    logits = torch.tensor([LOGITS_4])
    box = _grid([-10, -10, 30, 30], [0, 0, 8, 8])[None]
    expected = (_sp(-3.0) + _sp(-1.0) + _sp(0.0) + _sp(-1.5) + _sp(-2.0) + _sp(-1.0) + _sp(-0.5) + _sp(-3.0)) / 8
    assert mil_bag_loss(logits, box).item() == pytest.approx(expected, rel=1e-6)
    assert mil_bag_loss(logits, box, positive_within_box=True).item() == pytest.approx(expected, rel=1e-6)


def test_mil_box_touching_the_border():
    logits = torch.tensor([LOGITS_4])
    box = _grid([6, 2, 8, 6], [0, 0, 8, 8])[None]  # column 3, rows 1-2
    # rows: 3 (neg), 1 (pos), 0 (pos), 1.5 (neg); columns: 2 (neg), 1 (neg), 0.5 (neg), 3 (pos)
    expected = (_sp(3.0) + _sp(-1.0) + _sp(0.0) + _sp(1.5) + _sp(2.0) + _sp(1.0) + _sp(0.5) + _sp(-3.0)) / 8
    assert mil_bag_loss(logits, box).item() == pytest.approx(expected, rel=1e-6)
    # within the box: row 1 → 0 (cell (1, 3)), row 2 → -2 (cell (2, 3)), column 3 → max(0, -2) = 0
    expected_in = (_sp(3.0) + _sp(0.0) + _sp(2.0) + _sp(1.5) + _sp(2.0) + _sp(1.0) + _sp(0.5) + _sp(0.0)) / 8
    assert mil_bag_loss(logits, box, positive_within_box=True).item() == pytest.approx(expected_in, rel=1e-6)


def test_mil_mean_over_bags_of_all_instances():
    a = torch.tensor([LOGITS_4])
    b = torch.tensor(LOGITS_4).t().contiguous()[None]
    box_a, box_b = _mask([BOX_4]), torch.zeros(1, 4, 4, dtype=torch.bool)
    both = mil_bag_loss(torch.cat([a, b]), torch.cat([box_a, box_b]))
    mean = (mil_bag_loss(a, box_a) + mil_bag_loss(b, box_b)) / 2  # equal bag counts: mean of the means
    assert both.item() == pytest.approx(mean.item(), rel=1e-6)


def test_mil_gradient_direction():
    # each diagonal cell is the maximum of both its row and its column; everything else is far below
    logits = torch.full((1, 4, 4), -5.0)
    logits[0] += torch.arange(16.0).view(4, 4) * 0.01  # distinct values, no ties
    for i, v in enumerate([3.0, 2.0, 1.0, 0.5]):
        logits[0, i, i] = v
    logits.requires_grad_(True)
    mil_bag_loss(logits, _mask([BOX_4])).backward()
    g = logits.grad[0]
    assert g[0, 0] < 0 and g[1, 1] < 0, "maxima of positive bags are pushed up"
    assert g[2, 2] > 0 and g[3, 3] > 0, "maxima of negative bags are pushed down"
    off_diagonal = ~torch.eye(4, dtype=torch.bool)
    assert torch.all(g[off_diagonal] == 0), "non-maximal cells get no gradient"
    # hand value: d/dx softplus(-x) = -σ(-x), two bags per cell, mean over 8 bags
    assert g[0, 0].item() == pytest.approx(-2 * _sig(-3.0) / 8, rel=1e-5)
    assert g[3, 3].item() == pytest.approx(2 * _sig(0.5) / 8, rel=1e-5)


# ---------------------------------------------------------------- pairwise (Eq. 2)


def test_pairwise_constant_map_is_zero():
    assert mil_pairwise_loss(torch.full((2, 5, 5), 1.7)).item() == 0


def test_pairwise_step_edge_hand_computed():
    x = 2.0
    logits = torch.zeros(1, 3, 3)
    logits[0, :, 0] = x  # column 0 at σ(2), columns 1-2 at 0.5
    # 3×3 grid, 8-neighbourhood: 6 horizontal + 6 vertical + 8 diagonal = 20 pairs (40 ordered);
    # pairs across the step: 3 horizontal + 4 diagonal = 7
    expected = 7 * (_sig(x) - 0.5) ** 2 / 20
    assert mil_pairwise_loss(logits).item() == pytest.approx(expected, rel=1e-6)


def test_pairwise_weight_mask_restricts_centres():
    logits = torch.zeros(1, 3, 3)
    logits[0, :, 0] = 2.0
    weight = torch.zeros(1, 3, 3, dtype=torch.bool)
    weight[0, 1, 1] = True  # only the centre pixel: its 8 neighbours, 3 of them across the step
    assert mil_pairwise_loss(logits, weight).item() == pytest.approx(3 * (_sig(2.0) - 0.5) ** 2 / 8, rel=1e-6)
    assert mil_pairwise_loss(logits, torch.zeros(1, 3, 3)).item() == 0  # no weighted pair


def test_pairwise_gradient_pulls_neighbours_together():
    logits = torch.zeros(1, 3, 3)
    logits[0, :, 0] = 2.0
    logits.requires_grad_(True)
    mil_pairwise_loss(logits).backward()
    g = logits.grad[0]
    assert torch.all(g[:, 0] > 0), "the high side is pushed down"
    assert torch.all(g[:, 1] < 0), "its lower neighbours are pushed up"
    assert torch.all(g[:, 2] == 0), "pixels not adjacent to the step are untouched"


# ---------------------------------------------------------------- BoxInst projection


def _logit(p):
    return math.log(p / (1 - p))


def test_projection_prediction_equal_to_box_is_near_zero():
    box = _grid([0, 0, 4, 6], [0, 0, 8, 8], m=8)[None]
    logits = torch.where(box, 20.0, -20.0)
    assert projection_loss(logits, box).item() == pytest.approx(0.0, abs=1e-4)


def test_projection_hand_computed_dice():
    probs = [[0.5, 0.2, 0.1], [0.25, 0.9, 0.1], [0.1, 0.1, 0.4]]
    logits = torch.tensor([[[_logit(p) for p in row] for row in probs]], dtype=torch.float64)
    box = _mask([[[1, 1, 0], [1, 1, 0], [1, 1, 0]]])
    # onto x (max over rows): [0.5, 0.9, 0.4] vs [1, 1, 0]; onto y (max over columns): [0.5, 0.9, 0.4] vs [1, 1, 1]
    sq = 0.5 ** 2 + 0.9 ** 2 + 0.4 ** 2
    dice_x = 1 - 2 * (0.5 + 0.9) / (sq + 2 + 1e-5)
    dice_y = 1 - 2 * (0.5 + 0.9 + 0.4) / (sq + 3 + 1e-5)
    assert projection_loss(logits, box).item() == pytest.approx(dice_x + dice_y, rel=1e-9)
    two = projection_loss(torch.cat([logits, torch.full_like(logits, 30.0)]), torch.cat([box, box]))
    assert two.item() == pytest.approx((dice_x + dice_y + 1 - 2 * 2 / (3 + 2) + 1 - 2 * 3 / (3 + 3)) / 2, rel=1e-4)


# ---------------------------------------------------------------- BoxInst colour similarity and pairwise


def test_neighbour_offsets_order():
    assert neighbour_offsets(3, 2) == [(-2, -2), (-2, 0), (-2, 2), (0, -2), (0, 2), (2, -2), (2, 0), (2, 2)]
    with pytest.raises(ValueError):
        neighbour_offsets(4, 1)


def test_color_similarity_uniform_colour_is_one_inside_the_grid():
    lab = torch.full((2, 3, 6, 6), 40.0)
    sim = color_similarity(lab)
    assert sim.shape == (2, 8, 6, 6)
    for c, (dy, dx) in enumerate(neighbour_offsets(3, 2)):
        for i in range(6):
            for j in range(6):
                inside = 0 <= i + dy < 6 and 0 <= j + dx < 6
                assert sim[:, c, i, j].tolist() == [1.0 if inside else 0.0] * 2


def test_color_similarity_hand_value():
    lab = torch.zeros(1, 3, 1, 2)
    lab[0, :, 0, 1] = torch.tensor([3.0, 0.0, 4.0])  # distance 5 from its left neighbour
    sim = color_similarity(lab, kernel_size=3, dilation=1)
    right, left = neighbour_offsets(3, 1).index((0, 1)), neighbour_offsets(3, 1).index((0, -1))
    assert sim[0, right, 0, 0].item() == pytest.approx(math.exp(-5 / 2), rel=1e-6)
    assert sim[0, left, 0, 1].item() == pytest.approx(math.exp(-5 / 2), rel=1e-6)
    assert sim[0, left, 0, 0].item() == 0  # outside the grid


def _p_same(a, b):
    pa, pb = _sig(a), _sig(b)
    return pa * pb + (1 - pa) * (1 - pb)


def test_pairwise_color_equal_vs_opposite_logits():
    sim = color_similarity(torch.zeros(1, 3, 1, 2), dilation=1)
    box = torch.ones(1, 1, 2, dtype=torch.bool)
    equal = pairwise_color_loss(torch.tensor([[[3.0, 3.0]]]), sim, box, dilation=1)
    opposite = pairwise_color_loss(torch.tensor([[[3.0, -3.0]]]), sim, box, dilation=1)
    assert equal.item() == pytest.approx(-math.log(_p_same(3.0, 3.0)), rel=1e-5)
    assert opposite.item() == pytest.approx(-math.log(2 * _sig(3.0) * _sig(-3.0)), rel=1e-5)
    assert opposite.item() > equal.item()
    huge = pairwise_color_loss(torch.tensor([[[60.0, -60.0]]]), sim, box, dilation=1)
    assert huge.item() == pytest.approx(60.0 - math.log(2.0), rel=1e-6)  # stable in log space: σ(-60)² underflows


def test_pairwise_color_edges_below_threshold_contribute_nothing():
    lab = torch.zeros(1, 3, 1, 3)
    lab[0, 0, 0, 2] = 50.0  # pixel 2 has another colour: similarity exp(-25) < 0.3
    sim = color_similarity(lab, dilation=1)
    box = torch.ones(1, 1, 3, dtype=torch.bool)
    a, b = 1.0, -0.5
    for c in (-7.0, 0.0, 9.0):  # pixel 2's logit cannot matter
        loss = pairwise_color_loss(torch.tensor([[[a, b, c]]]), sim, box, dilation=1)
        assert loss.item() == pytest.approx(-math.log(_p_same(a, b)), rel=1e-5)
    nothing = pairwise_color_loss(torch.tensor([[[a, b, 0.0]]], requires_grad=True), sim, box, threshold=1.1,
                                  dilation=1)
    assert nothing.item() == 0 and nothing.requires_grad


def test_pairwise_color_only_centres_inside_the_box():
    sim = color_similarity(torch.zeros(1, 3, 1, 3), dilation=1)
    box = _mask([[[1, 0, 0]]])  # edges 0→1 only
    logits = torch.tensor([[[2.0, -1.0, 5.0]]], requires_grad=True)
    loss = pairwise_color_loss(logits, sim, box, dilation=1)
    assert loss.item() == pytest.approx(-math.log(_p_same(2.0, -1.0)), rel=1e-5)
    loss.backward()
    assert logits.grad[0, 0, 2] == 0  # no counted edge
    assert logits.grad[0, 0, 0] > 0 and logits.grad[0, 0, 1] < 0  # the pair is pulled towards agreement


def test_pairwise_color_default_dilation_on_28_grid_runs():
    torch.manual_seed(0)
    rgb = torch.full((3, 3, 28, 28), 100.0)
    rgb[:, 0, :, 14:] = 200.0  # two colour regions, slight noise
    lab = rgb_to_lab(rgb + torch.rand(3, 3, 28, 28))
    sim = color_similarity(lab)
    box = box_to_grid_mask(torch.tensor([[2.0, 2, 20, 25]] * 3), torch.tensor([[0.0, 0, 28, 28]] * 3), 28)
    logits = torch.randn(3, 28, 28, requires_grad=True)
    loss = pairwise_color_loss(logits, sim, box)
    assert loss.item() > 0
    loss.backward()
    assert torch.all(logits.grad[:, :, 22:] == 0)  # box columns 2-19: cells over 2 columns away are in no edge
    assert torch.all(logits.grad[:, :27, 20:22] != 0)  # reached from centres in the box (rows 2-24) by dilation 2
    assert torch.all(logits.grad[:, 27] == 0)


@pytest.mark.parametrize("rgb, lab", [
    ((255, 0, 0), (53.2406, 80.0925, 67.2032)),  # published sRGB (D65) primaries
    ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
    ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
    ((255, 255, 255), (100.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
    ((128, 128, 128), (53.585, 0.0, 0.0)),
])
def test_rgb_to_lab_reference_colours(rgb, lab):
    ours = rgb_to_lab(torch.tensor(rgb, dtype=torch.uint8).view(3, 1, 1)).flatten().tolist()
    assert ours == pytest.approx(list(lab), abs=0.01)


def test_rgb_to_lab_agrees_with_opencv_float_conversion():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(7, 9, 3), dtype=np.uint8)
    ref = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)  # cv2 interpolates tables: ~0.2 off
    ours = rgb_to_lab(torch.from_numpy(img).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, ref, atol=0.3)
    batched = rgb_to_lab(torch.from_numpy(img).permute(2, 0, 1)[None].float().repeat(2, 1, 1, 1))
    assert batched.shape == (2, 3, 7, 9) and batched.dtype == torch.float32
    assert torch.allclose(batched[1], torch.from_numpy(ours).permute(2, 0, 1))
    with pytest.raises(ValueError, match="3, H, W"):
        rgb_to_lab(torch.zeros(4, 7, 9))


def test_warmup_factor():
    assert warmup_factor(0) == 0.0
    assert warmup_factor(2500) == pytest.approx(0.25)
    assert warmup_factor(10000) == 1.0 and warmup_factor(50000) == 1.0
    assert warmup_factor(5, warmup_iters=10) == 0.5 and warmup_factor(5, warmup_iters=0) == 1.0


# ---------------------------------------------------------------- shared behaviour


def _all_losses(logits, box, lab):
    sim = color_similarity(lab)
    return [
        mil_bag_loss(logits, box),
        mil_bag_loss(logits, box, positive_within_box=True),
        mil_pairwise_loss(logits),
        mil_pairwise_loss(logits, box),
        projection_loss(logits, box),
        pairwise_color_loss(logits, sim, box),
    ]


def test_zero_instances_return_connected_zero():
    logits = torch.randn(0, 2, 28, 28, requires_grad=True)
    per_instance = select_class_logits(logits, torch.zeros(0, dtype=torch.long))
    box = torch.zeros(0, 28, 28, dtype=torch.bool)
    losses = _all_losses(per_instance, box, torch.zeros(0, 3, 28, 28))
    for loss in losses:
        assert loss.dim() == 0 and loss.item() == 0 and loss.requires_grad
    sum(losses).backward()
    assert logits.grad is not None and torch.all(logits.grad == 0)
    assert color_similarity(torch.zeros(0, 3, 28, 28)).shape == (0, 8, 28, 28)


def test_class_agnostic_and_class_specific_agree():
    torch.manual_seed(1)
    agnostic = torch.randn(4, 1, 10, 10)
    classes = torch.tensor([3, 0, 2, 1])
    specific = torch.randn(4, 5, 10, 10)
    specific[torch.arange(4), classes] = agnostic[:, 0]
    gt = torch.tensor([[1.0, 1, 6, 8], [0, 0, 10, 10], [4, 2, 30, 5], [-3, 5, 2, 12]])
    box = box_to_grid_mask(gt, torch.tensor([[0.0, 0, 10, 10]] * 4), 10)
    lab = rgb_to_lab(torch.randint(0, 256, (4, 3, 10, 10)))
    a = _all_losses(select_class_logits(agnostic, classes), box, lab)
    b = _all_losses(select_class_logits(specific, classes), box, lab)
    for x, y in zip(a, b):
        assert x.item() == pytest.approx(y.item(), rel=1e-6)


def test_shape_mismatches_raise():
    logits = torch.zeros(2, 4, 4)
    box = torch.zeros(2, 4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="select_class_logits"):
        mil_bag_loss(torch.zeros(2, 1, 4, 4), box)
    for fn in (mil_bag_loss, projection_loss):
        with pytest.raises(ValueError, match="does not match"):
            fn(logits, box[:1])
    with pytest.raises(ValueError, match="does not match"):
        mil_pairwise_loss(logits, box[:, :3])
    with pytest.raises(ValueError, match="K²-1"):
        pairwise_color_loss(logits, torch.zeros(2, 7, 4, 4), box)
    with pytest.raises(ValueError, match="K²-1"):
        pairwise_color_loss(logits, torch.zeros(2, 8, 5, 5), box)
    with pytest.raises(ValueError, match="N, 3, M, M"):
        color_similarity(torch.zeros(2, 4, 4, 4))
