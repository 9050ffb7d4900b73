"""WSPS's instance CRF (§3.5, Eq. 2-4), its matched loss and its panoptic output, on hand-made Q and detections."""
import math

import pytest
import torch

from wsis.core.meanfield import LocalCRFParams
from wsis.methods.panoptic.instance_crf import InstanceCRF, detection_labels, detection_unary
from wsis.methods.panoptic.losses import match_segments, matched_instance_loss
from wsis.methods.panoptic.segments import panoptic_from_marginals

torch.set_num_threads(1)


def two_people_and_sky(h=6, w=8):
    """Q over (0 sky, 1 person): sky on the top two rows, people below; two person boxes split the width."""
    q = torch.zeros(2, h, w)
    q[0, :2] = 0.9
    q[1, :2] = 0.1
    q[0, 2:] = 0.2
    q[1, 2:] = 0.8
    labels = detection_labels([[0, 2, 4, 6], [4, 2, 8, 6]], [1, 1], [0.9, 0.6], stuff_classes=[0], image_size=(h, w))
    return q, labels


def test_box_and_global_unaries_by_hand():
    q, labels = two_people_and_sky()
    assert labels.classes.tolist() == [1, 1, 0] and labels.is_stuff.tolist() == [False, False, True]
    assert labels.boxes[2].tolist() == [0, 0, 8, 6] and labels.scores[2] == 1  # the dummy: whole image, score 1
    u = detection_unary(q, labels, stride=1.0, w_box=2.0, w_global=0.5, eps=0.0)
    s1 = 1 / (1 + math.exp(-(2 * 0.9 - 1)))  # s' = sigmoid(2s - 1)
    # pixel (3, 1): inside box 0, outside box 1, Q(person) = 0.8
    assert u[0, 3, 1] == pytest.approx(-math.log(2 * s1 * 0.8 + 0.5 * 0.8), rel=1e-5)
    assert u[1, 3, 1] == pytest.approx(-math.log(0.5 * 0.8), rel=1e-5)  # global term only
    s_dummy = 1 / (1 + math.exp(-1))
    assert u[2, 0, 0] == pytest.approx(-math.log(2 * s_dummy * 0.9 + 0.5 * 0.9), rel=1e-5)
    u_paper = detection_unary(q, labels, 1.0, 2.0, 0.5, score_transform="identity", eps=0.0)
    assert u_paper[0, 3, 1] == pytest.approx(-math.log(2 * 0.9 * 0.8 + 0.5 * 0.8), rel=1e-5)


def test_stride_places_the_box_on_the_map():
    q = torch.full((1, 2, 4), 0.5)
    labels = detection_labels([[0, 0, 8, 8]], [0], [1.0], stuff_classes=[], image_size=(8, 16))
    u = detection_unary(q, labels, stride=4.0, w_box=1.0, w_global=0.0, score_transform="identity", eps=1e-9)
    assert torch.isfinite(u[0, :, :2]).all() and (u[0, :, 2:] > 10).all()  # map pixels 0, 1 have centres 2, 6 < 8


def test_crf_zero_iterations_is_the_softmax_of_the_unary_and_stuff_claims_its_region():
    q, labels = two_people_and_sky()
    image = torch.zeros(1, 3, 6, 8)
    crf = InstanceCRF(LocalCRFParams(iterations=0, window=3), w_box=1.0, w_global=1.0)
    (m,) = crf(q[None], image, [labels], stride=1.0)
    u = detection_unary(q, labels, 1.0, 1.0, 1.0)
    assert torch.allclose(m, torch.softmax(-u, 0), atol=1e-6)
    crf = InstanceCRF(LocalCRFParams(iterations=3, window=3))
    (m,) = crf(q[None], image, [labels], stride=1.0)
    owner = m.argmax(0)
    assert (owner[:2] == 2).all(), "the sky's dummy detection takes the sky rows"
    assert (owner[2:, :4] == 0).all() and (owner[2:, 4:] == 1).all(), "each person takes its own box"
    assert torch.allclose(m.sum(0), torch.ones(6, 8), atol=1e-5)


def test_zero_detections_stuff_only_and_a_batch_of_different_label_counts():
    q, labels = two_people_and_sky()
    stuff_only = detection_labels(torch.zeros(0, 4), [], [], stuff_classes=[0, 1], image_size=(6, 8))
    crf = InstanceCRF(LocalCRFParams(iterations=2, window=3))
    m_stuff, m_both = crf(torch.stack([q, q]), torch.zeros(2, 3, 6, 8), [stuff_only, labels], stride=1.0)
    assert m_stuff.shape == (2, 6, 8) and m_both.shape == (3, 6, 8)
    assert (m_stuff.argmax(0)[:2] == 0).all() and (m_stuff.argmax(0)[2:] == 1).all()
    with pytest.raises(ValueError, match="at least one label"):
        crf(q[None], torch.zeros(1, 3, 6, 8), [detection_labels(torch.zeros(0, 4), [], [], [], (6, 8))], 1.0)


def test_bad_inputs_are_rejected():
    q, labels = two_people_and_sky()
    bad = q.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        detection_unary(bad, labels, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="must be finite"):
        detection_labels([[0, 0, float("inf"), 1]], [0], [0.5], [], (6, 8))
    with pytest.raises(ValueError, match="not among Q's 1 channels"):
        detection_unary(q[:1], labels, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="2 boxes, 1 classes"):
        detection_labels([[0, 0, 1, 1], [0, 0, 2, 2]], [0], [0.5, 0.5], [], (6, 8))


def test_gradients_of_the_crf():
    torch.manual_seed(0)
    q = torch.softmax(torch.randn(1, 2, 4, 5, dtype=torch.float64), 1).requires_grad_()
    image = torch.rand(1, 3, 4, 5, dtype=torch.float64) * 255
    labels = [detection_labels([[0, 0, 3, 4]], [1], [0.7], stuff_classes=[0], image_size=(4, 5))]
    crf = InstanceCRF(LocalCRFParams(iterations=2, window=3, bilateral_rgb_std=60.0)).double()

    def f(q_in):
        return crf(q_in, image, labels, stride=1.0)[0]

    assert torch.autograd.gradcheck(f, (q,), eps=1e-6, atol=1e-5)
    loss = (f(q)[0] * torch.arange(20.0, dtype=torch.float64).view(4, 5)).sum()
    loss.backward()
    for p in (crf.log_w_box, crf.log_w_global, crf.log_w_kernels):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_matched_loss_is_invariant_to_permuting_ground_truth_instances():
    torch.manual_seed(1)
    m = torch.softmax(torch.randn(3, 6, 8), 0)
    classes = torch.tensor([1, 1, 0])
    seg = torch.zeros(6, 8, dtype=torch.long)
    seg[2:, :4], seg[2:, 4:], seg[:2] = 0, 1, 2
    seg[0, 0] = 255
    seg_classes = torch.tensor([1, 1, 0])
    loss = matched_instance_loss(m, classes, seg, seg_classes)
    perm = torch.tensor([2, 0, 1])  # segment g becomes segment inverse(perm)[g]
    inverse = torch.argsort(perm)
    seg_p = seg.clone()
    valid = seg != 255
    seg_p[valid] = inverse[seg[valid]]
    loss_p = matched_instance_loss(m, classes, seg_p, seg_classes[perm])
    assert loss == pytest.approx(float(loss_p), rel=1e-6)


def test_matching_by_hand_and_unmatched_segments():
    m = torch.zeros(3, 2, 4)
    m[0, :, :2], m[1, :, 2:], m[2] = 1.0, 1.0, 0.0
    m = m * 0.9 + 0.05  # labels 0, 1: left / right halves
    seg = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0]])
    match = match_segments(m, torch.tensor([5, 5, 7]), seg, torch.tensor([5, 5]))
    assert match.tolist() == [1, 0]  # segment 0 (right) takes label 1, segment 1 (left) label 0
    loss = matched_instance_loss(m, torch.tensor([5, 5, 7]), seg, torch.tensor([5, 5]))
    assert float(loss) == pytest.approx(-math.log(0.95), rel=1e-5)
    # a segment of a class no label has: no match, no loss; nothing matched at all: 0 with a graph
    assert match_segments(m, torch.tensor([5, 5, 7]), seg, torch.tensor([5, 9])).tolist() == [1, -1]
    mg = m.clone().requires_grad_()
    zero = matched_instance_loss(mg, torch.tensor([5, 5, 7]), seg, torch.tensor([8, 9]))
    assert float(zero.detach()) == 0.0 and zero.requires_grad
    assert match_segments(m, torch.tensor([5, 5, 7]), seg, torch.zeros(0, dtype=torch.long)).numel() == 0


def test_panoptic_output_does_not_overlap_and_rescores_things():
    q, labels = two_people_and_sky()
    (m,) = InstanceCRF(LocalCRFParams(iterations=3, window=3))(q[None], torch.zeros(1, 3, 6, 8), [labels], 1.0)
    ids, info = panoptic_from_marginals(m, labels, q, out_size=(12, 16))
    assert ids.shape == (12, 16) and ids.dtype == torch.int32
    assert sorted(int(i) for i in ids.unique()) == [s["id"] for s in info] == [1, 2, 3]  # one id per pixel
    ids, info = panoptic_from_marginals(m, labels, q)  # at the map's resolution: the rescoring by hand
    things = [s for s in info if s["isthing"]]
    assert len(things) == 2
    for s in things:
        assert s["score"] == pytest.approx(float(q[1][ids == s["id"]].mean())) and s["score"] == pytest.approx(0.8)
    stuff = [s for s in info if not s["isthing"]]
    assert stuff[0]["category_id"] == 0 and stuff[0]["score"] == 1.0
    assert len(panoptic_from_marginals(m, labels, q, min_area=16)[1]) == 3  # every segment has 16 px
    ids_small, info_small = panoptic_from_marginals(m, labels, q, min_area=17)
    assert info_small == [] and (ids_small == 0).all()  # too small: void


def test_panoptic_pseudo_labels_things_first_then_stuff():
    import numpy as np

    from wsis.methods.panoptic.pseudo_labels import assemble_panoptic

    masks = np.zeros((2, 4, 6), bool)
    masks[0, 2:, :2] = True
    masks[1, 2:, 4:] = True
    ignore = np.zeros((4, 6), bool)
    ignore[2:, 2] = True  # a doubtful pixel column between the two things
    stuff = np.full((4, 6), 255, np.uint8)
    stuff[:2] = 8  # sky (class 7) on top
    stuff[2:] = 5  # grass (class 4) below, also under the things
    stuff[3, 3] = 255
    ids, segs = assemble_panoptic(masks, [1, 1], ignore, stuff)
    assert [(s["category_id"], s["isthing"], s["area"]) for s in segs] == [(1, True, 4), (1, True, 4), (4, False, 1),
                                                                            (7, False, 12)]
    assert (ids[2:, :2] == 1).all() and (ids[2:, 4:] == 2).all() and (ids[:2] == 4).all()
    assert ids[2, 3] == 3 and ids[3, 3] == 0 and (ids[2:, 2] == 0).all()  # grass only where free; void elsewhere
    empty_ids, empty = assemble_panoptic(np.zeros((0, 4, 6), bool), [], None, np.zeros((4, 6), np.uint8))
    assert empty == [] and (empty_ids == 0).all()
    with pytest.raises(ValueError, match="overlap"):
        assemble_panoptic(np.ones((2, 4, 6), bool), [1, 2], None, stuff)
    with pytest.raises(ValueError, match="do not agree"):
        assemble_panoptic(masks, [1, 1], None, stuff[:3])


def test_owner_at_output_in_chunks_equals_the_full_arg_max():
    from wsis.methods.panoptic.segments import owner_at_output, resize_to_output

    torch.manual_seed(0)
    m = torch.rand(37, 6, 8)  # 37 labels on a padded 48 × 64 input at stride 8; the image is 45 × 60 of it
    m[5] = m[9]               # a tie: the first label wins, as argmax
    full = resize_to_output(m, (45, 60), (90, 120), 8)
    assert full.shape == (37, 90, 120)
    for chunk in (1, 4, 16, 64):
        assert torch.equal(owner_at_output(m, (45, 60), (90, 120), 8, chunk=chunk), full.argmax(0))
    assert owner_at_output(m[:0], (45, 60), (90, 120), 8) is None
    # the image's grid cells only: a map that is 1 on the padding rows/columns never reaches the output
    pad = torch.zeros(1, 6, 8)
    pad[0, :, 7:] = 1.0
    pad[0, 5:, :] = 1.0
    assert resize_to_output(pad, (40, 56), (40, 56), 8).max() == 0.0
