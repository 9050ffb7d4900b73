"""CCGR's pure core: Φ on the integral image (Eq. 2), the centre-context gap (Eq. 3) and its descent, PRM peaks,
peak bags ranked by Eq. 4, and WSDDN's bag scores and loss."""
import math

import numpy as np

import pytest
import torch
import torch.nn.functional as F

from wsis.methods.ccgr.losses import wsddn_bag_loss, wsddn_bag_scores
from wsis.methods.ccgr.peaks import contrast_objectness, find_peaks, peak_bags
from wsis.methods.ccgr.refine import (CCGRParams, _levels, box_means, ccgr_loss, gaussian_blur, integral_image,
                                      refine_boxes)


def _blob(smooth=True):
    """A 64 × 64 map with a square blob of 1 at [20, 40)², Gaussian-smoothed (σ 2) like a network's scores."""
    s = torch.zeros(1, 1, 64, 64)
    s[..., 20:40, 20:40] = 1.0
    if smooth:
        k = torch.exp(-torch.arange(-6, 7.0) ** 2 / 8.0)
        k = k / k.sum()
        s = F.conv2d(F.conv2d(s, k.view(1, 1, 1, -1), padding=(0, 6)), k.view(1, 1, -1, 1), padding=(6, 0))
    return s[0, 0]


def _iou(a, b):
    iw = (torch.minimum(a[2], b[2]) - torch.maximum(a[0], b[0])).clamp_min(0)
    ih = (torch.minimum(a[3], b[3]) - torch.maximum(a[1], b[1])).clamp_min(0)
    inter = iw * ih
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def test_box_mean_equals_the_direct_mean_at_integer_and_fractional_corners():
    torch.manual_seed(0)
    s = torch.rand(9, 11)
    integral = integral_image(s)[None]
    assert box_means(integral, torch.tensor([[2.0, 1.0, 7.0, 6.0]])).item() == pytest.approx(s[1:6, 2:7].mean().item())
    fine = s.repeat_interleave(4, 0).repeat_interleave(4, 1)  # each pixel 4 × 4 cells of a quarter pixel
    box = torch.tensor([[1.25, 0.5, 6.75, 7.25]])
    direct = fine[2:29, 5:27].mean().item()  # rows 0.5..7.25, columns 1.25..6.75 in quarter pixels
    assert box_means(integral, box).item() == pytest.approx(direct, rel=1e-5)
    outside = box_means(integral, torch.tensor([[-3.0, -2.0, 2.0, 1.0]])).item()  # clipped to the map
    assert outside == pytest.approx(s[0:1, 0:2].mean().item())


def test_box_mean_gradient_matches_finite_differences():
    torch.manual_seed(1)
    integral = integral_image(torch.rand(12, 12, dtype=torch.float64))[None]
    box = torch.tensor([[2.3, 3.6, 8.2, 9.7]], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(box_means(integral, box).sum(), box)
    for j in range(4):
        d = torch.zeros_like(box)
        d[0, j] = 1e-5
        fd = (box_means(integral, box.detach() + d) - box_means(integral, box.detach() - d)).item() / 2e-5
        assert grad[0, j].item() == pytest.approx(fd, rel=1e-4, abs=1e-8)


def test_gap_loss_by_hand():
    integral = integral_image(_blob(smooth=False))[None]
    box = torch.tensor([[20.0, 20.0, 40.0, 40.0]])  # the blob; B̃ = [15, 45)², its ring all 0
    assert ccgr_loss(integral, box).item() == pytest.approx(-1.0)
    assert ccgr_loss(integral, box, context_mean="paper").item() == pytest.approx(400 / 900 - 1.0 - 1.0)


@pytest.mark.parametrize("params", [CCGRParams(), CCGRParams(blur=())], ids=["coarse-to-fine", "plain"])
@pytest.mark.parametrize("start", [[20.0, 20.0, 30.0, 40.0], [25.0, 25.0, 35.0, 35.0], [10.0, 10.0, 50.0, 50.0]])
def test_refinement_grows_a_partial_box_and_shrinks_a_large_one_onto_the_blob(start, params):
    blob = torch.tensor([20.0, 20.0, 40.0, 40.0])
    out = refine_boxes(_blob(), torch.tensor([start]), params)
    assert _iou(out[0], blob) > 0.85 and _iou(torch.tensor(start), blob) <= 0.5
    assert _iou(refine_boxes(_blob(), torch.tensor([start]), CCGRParams(steps=0))[0], torch.tensor(start)) == 1.0


def test_coarse_to_fine_reaches_the_blob_from_a_part_where_the_plain_descent_has_no_gradient():
    """A box on the middle 40 % of a clean blob: its context ring lies inside the blob too, so Eq. 3 is flat there
    and the paper's plain descent leaves it; the coarse levels give it the blob's extent."""
    blob, start = torch.tensor([20.0, 20.0, 40.0, 40.0]), torch.tensor([[26.0, 26.0, 34.0, 34.0]])
    plain = refine_boxes(_blob(smooth=False), start, CCGRParams(blur=()))
    assert torch.allclose(plain, start)
    assert _iou(refine_boxes(_blob(smooth=False), start)[0], blob) > 0.85


def test_levels_split_the_steps():
    assert _levels(CCGRParams()) == [(0.5, 50), (0.25, 50), (0.0, 100)]
    assert _levels(CCGRParams(steps=5, blur=(1.0, 0.5, 0.25))) == [(0.5, 1), (0.25, 1), (0.0, 3)]
    assert _levels(CCGRParams(blur=())) == [(0.0, 200)] and _levels(CCGRParams(steps=0)) == []
    with pytest.raises(ValueError, match="blur"):
        CCGRParams(blur=(0.5, 0.0))
    assert CCGRParams(blur=[0.5]).blur == (0.5,)  # a config's list


def test_gaussian_blur_moments_borders_and_one_sigma_per_map():
    impulse = torch.zeros(2, 61, 61)
    impulse[:, 30, 30] = 1.0
    out = gaussian_blur(impulse, torch.tensor([3.0, 6.0]))
    t = torch.arange(61.0) - 30
    for k, sigma in enumerate((3.0, 6.0)):
        assert out[k].sum().item() == pytest.approx(1.0, abs=1e-5)
        var = (out[k].sum(0) * t ** 2).sum().item()  # along x: 10 (two passes of radius 3, one of 2) and 38
        assert var == pytest.approx(sigma ** 2, rel=0.12)
        assert out[k].argmax().item() == 30 * 61 + 30 and torch.allclose(out[k], out[k].T, atol=1e-6)
    const = torch.full((1, 9, 13), 0.7)
    assert torch.allclose(gaussian_blur(const, torch.tensor([4.0])), const)  # no darkening at the borders
    assert torch.equal(gaussian_blur(impulse, torch.zeros(2)), impulse)
    assert gaussian_blur(torch.zeros(0, 5, 5), torch.zeros(0)).shape == (0, 5, 5)


def test_refinement_is_batched_and_keeps_boxes_in_the_image():
    maps = torch.stack([_blob(), _blob().flip(0).flip(1)])
    boxes = torch.tensor([[20.0, 20.0, 30.0, 40.0], [-5.0, 30.0, 70.0, 70.0]])
    both = refine_boxes(maps, boxes)
    one = torch.cat([refine_boxes(maps[i], boxes[i:i + 1]) for i in range(2)])
    assert torch.allclose(both, one, atol=1e-4)
    assert (both >= 0).all() and (both[:, 2:] <= 64).all() and (both[:, 2:] - both[:, :2] >= 2.0).all()
    assert refine_boxes(_blob(), torch.zeros(0, 4)).shape == (0, 4)
    with pytest.raises(ValueError, match="finite"):
        refine_boxes(_blob(), torch.tensor([[0.0, 0.0, math.nan, 3.0]]))
    with pytest.raises(ValueError, match="for 2 boxes"):
        refine_boxes(maps[:1], boxes)


def test_peaks_prm_rule():
    m = 0.5 - 0.01 * torch.arange(49.0).view(7, 7)  # a ramp down from the corner (0, 0)
    m[0, 0] = 0.4          # no longer the maximum: (0, 1) is, at 0.49
    m[3, 3] = 1.0          # a peak
    m[5:7, 5:7] = 0.0
    m[6, 6] = 0.05         # a local maximum below the median (0.26): no peak
    xy, classes, values = find_peaks(torch.stack([m, torch.zeros(7, 7)]), [3, 8], stride=4)
    assert xy.tolist() == [[6.0, 2.0], [14.0, 14.0]] and classes.tolist() == [3, 3]
    assert values.tolist() == pytest.approx([0.49, 1.0])
    assert len(find_peaks(torch.zeros(0, 5, 5), [])[0]) == 0
    flat = torch.zeros(1, 6, 6)
    flat[0, 2:4, 1:4] = 1.0  # a flat top of 2 × 3 pixels: one peak, its first pixel
    assert find_peaks(flat, [0])[0].tolist() == [[1.5, 2.5]]
    with pytest.raises(ValueError, match="NaN"):
        find_peaks(torch.full((1, 3, 3), math.nan), [0])


def test_peak_bags_one_peak_per_proposal_and_eq4_ranking():
    peaks = torch.tensor([[10.0, 10.0], [30.0, 10.0], [20.0, 10.0]])
    classes = torch.tensor([0, 0, 1])
    boxes = torch.tensor([[0.0, 0.0, 20.0, 20.0],    # peak 0 (and class-1 peak 2? no: x 20 is outside)
                          [0.0, 0.0, 40.0, 20.0],    # both class-0 peaks: in no class-0 bag; class 1's peak 2
                          [5.0, 5.0, 15.0, 15.0],    # peak 0, all foreground
                          [25.0, 0.0, 35.0, 20.0]])  # peak 1
    objectness = torch.tensor([0.5, 0.9, 0.5, 0.7])
    foreground = torch.zeros(20, 40)
    foreground[5:15, 5:15] = 1.0
    bags = peak_bags(peaks, classes, boxes, objectness, foreground)
    # proposal 2: R = 0.5 − 0.1 · 0 = 0.5; proposal 0: 0.5 − 0.1 · 300/400 = 0.425
    assert [b.tolist() for b in bags] == [[2, 0], [3], [1]]
    assert [b.tolist() for b in peak_bags(peaks, classes, boxes, objectness, foreground, top_k=1)][0] == [2]
    assert [len(b) for b in peak_bags(peaks, classes, torch.zeros(0, 4), torch.zeros(0), foreground)] == [0, 0, 0]


def test_wsddn_scores_and_loss_by_hand():
    cls = torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 1.0]], requires_grad=True)
    det = torch.tensor([[1.0, 0.0], [0.0, 0.0], [5.0, 5.0]], requires_grad=True)
    bag = torch.tensor([0, 0, 1])
    phi = wsddn_bag_scores(cls, det, bag, 2)
    sc = torch.softmax(cls.detach()[:2], 1)
    sd = torch.softmax(det.detach()[:2], 0)
    assert torch.allclose(phi[0], (sc * sd).sum(0))
    assert torch.allclose(phi[1], torch.tensor([0.5, 0.5]))  # one proposal: its class softmax
    loss = wsddn_bag_loss(cls, det, bag, torch.tensor([0, 1]))
    p = phi.detach()
    expect = -(math.log(p[0, 0]) + math.log(1 - p[0, 1]) + math.log(p[1, 1]) + math.log(1 - p[1, 0]))
    assert loss.item() == pytest.approx(expect, rel=1e-5)
    loss.backward()
    assert cls.grad.abs().sum() > 0 and det.grad.abs().sum() > 0
    sure = wsddn_bag_scores(torch.tensor([[50.0, -50.0]]), torch.zeros(1, 2), torch.tensor([0]), 1)
    e32 = torch.finfo(torch.float32).eps  # WSDDN's 1e-10 cannot be held below 1 in float32
    assert sure[0, 0].item() == 1 - e32 and sure[0, 1].item() == pytest.approx(e32)
    f64 = torch.float64
    sure64 = wsddn_bag_scores(torch.tensor([[50.0, -50.0]], dtype=f64), torch.zeros(1, 2, dtype=f64), torch.tensor([0]), 1)
    assert sure64[0, 1].item() == pytest.approx(1e-10)
    certain = wsddn_bag_loss(torch.tensor([[50.0, -50.0]]), torch.zeros(1, 2), torch.tensor([0]), torch.tensor([0]))
    assert math.isfinite(certain.item()) and certain.item() < 1e-5  # no 0 · log 0 = NaN


def test_wsddn_empty_and_bad_inputs():
    cls = torch.zeros(0, 3, requires_grad=True)
    loss = wsddn_bag_loss(cls, torch.zeros(0, 3, requires_grad=True), torch.zeros(0, dtype=torch.long),
                          torch.zeros(0, dtype=torch.long))
    assert loss.item() == 0.0 and loss.requires_grad
    with pytest.raises(ValueError, match="do not agree"):
        wsddn_bag_scores(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="no proposal"):
        wsddn_bag_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([0]), torch.tensor([0, 1]))


def test_box_masks_crop_the_class_and_give_overlaps_to_the_smaller_box():
    from wsis.methods.ccgr.instances import box_masks

    labels = np.zeros((8, 10), int)
    labels[1:7, 1:9] = 3
    labels[2:4, 2:4] = 5
    masks = box_masks(labels, [[0, 0, 10, 8], [1, 1, 5, 5], [6, 0, 10, 8]], [3, 3, 5])
    assert masks.shape == (3, 8, 10) and masks.sum(0).max() == 1
    small = np.zeros((8, 10), bool)
    small[1:5, 1:5] = labels[1:5, 1:5] == 3
    assert (masks[1] == small).all()                      # the small box keeps its class-3 pixels
    assert masks[0].sum() == (labels == 3).sum() - small.sum()
    assert not masks[2].any()                            # no class-5 pixel in the third box
    with pytest.raises(ValueError, match="2 boxes for 1 classes"):
        box_masks(labels, [[0, 0, 1, 1], [0, 0, 2, 2]], [3])


def test_contrast_objectness_by_hand():
    """B_S = Φ_O(B) − Φ_O(C) on a 10 × 10 foreground square at (10, 10) in a 40 × 40 map."""
    fg = torch.zeros(40, 40)
    fg[10:20, 10:20] = 1.0
    boxes = torch.tensor([[10.0, 10.0, 20.0, 20.0],   # the square: inside 1, ring 0
                          [12.0, 12.0, 18.0, 18.0],   # a part: ring (9 × 9 − 6 × 6) all foreground
                          [30.0, 30.0, 36.0, 36.0],   # background
                          [5.0, 10.0, 25.0, 20.0],    # twice as wide: inside 100/200, ring 0 (30 × 15 − 200)
                          [0.0, 0.0, 4.0, 4.0]])      # at the corner: the ring is clipped to the image
    got = contrast_objectness(fg, boxes)
    assert got.tolist() == pytest.approx([1.0, 0.0, 0.0, 0.5, 0.0], abs=1e-5)
    # a ring of 2 px outside the square with the 1.5× context: 14 × 14 box centred on the square, 21 × 21 context
    ring = contrast_objectness(fg, torch.tensor([[8.0, 8.0, 22.0, 22.0]]))
    assert ring.item() == pytest.approx(100 / 196 - 0 / (21 * 21 - 196), abs=1e-5)
    assert contrast_objectness(fg, torch.zeros(0, 4)).shape == (0,)


def test_contrast_objectness_puts_the_whole_object_first_where_eq4_alone_picks_a_part():
    """With B_S = 0, Eq. 4 ranks a part inside the object above the object's own box (no background pixel);
    with the contrast objectness the object's box comes first."""
    fg = torch.zeros(40, 40)
    fg[10:20, 10:20] = 1.0
    boxes = torch.tensor([[12.0, 12.0, 18.0, 18.0], [10.0, 10.0, 20.0, 20.0], [11.0, 9.0, 21.0, 20.0]])
    peak, cls = torch.tensor([[15.0, 15.0]]), torch.tensor([0])
    assert peak_bags(peak, cls, boxes, torch.zeros(3), fg)[0].tolist()[0] == 0
    assert peak_bags(peak, cls, boxes, contrast_objectness(fg, boxes), fg)[0].tolist() == [1, 2, 0]
