"""DSRG's losses by hand, the seeds from cues, and one training step whose grown labels change its loss."""
import math

import numpy as np
import pytest
import torch

from wsis.core.meanfield import LocalCRFParams
from wsis.methods.dsrg.losses import balanced_seed_loss, constrain_loss
from wsis.methods.dsrg.seeds import dsrg_seeds
from wsis.methods.dsrg.training import DSRGSettings, dsrg_step, seeds_at, tags_from_seeds

U = -1


def test_balanced_seed_loss_by_hand():
    p = torch.tensor([[[[0.5, 0.2, 0.9]], [[0.5, 0.8, 0.1]]]])  # (1, 2, 1, 3)
    labels = torch.tensor([[[0, 1, U]]])
    bg, fg = balanced_seed_loss(torch.log(p), labels)
    assert bg.item() == pytest.approx(-math.log(0.5))
    assert fg.item() == pytest.approx(-math.log(0.8))
    # two images: per image normalised, then averaged; image 2 has two bg seeds and no fg seed (adds 0)
    p2 = torch.tensor([[[[0.4, 0.1, 0.5]], [[0.6, 0.9, 0.5]]]])
    labels2 = torch.tensor([[[0, 0, U]]])
    bg, fg = balanced_seed_loss(torch.log(torch.cat([p, p2])), torch.cat([labels, labels2]))
    assert bg.item() == pytest.approx((-math.log(0.5) + -(math.log(0.4) + math.log(0.1)) / 2) / 2)
    assert fg.item() == pytest.approx(-math.log(0.8) / 2)


def test_all_ignore_gives_zero_loss_not_nan_and_gradients_otherwise():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    bg, fg = balanced_seed_loss(torch.log_softmax(logits, 1), torch.full((2, 4, 4), U))
    assert bg.item() == 0.0 and fg.item() == 0.0
    (bg + fg).backward()
    assert torch.isfinite(logits.grad).all()


def test_constrain_loss_is_zero_when_the_crf_is_the_identity_and_kl_otherwise():
    p = torch.softmax(torch.randn(2, 3, 4, 5), 1).requires_grad_()
    assert constrain_loss(p, p.detach()).item() == pytest.approx(0.0, abs=1e-7)
    q = torch.tensor([0.7, 0.2, 0.1]).view(1, 3, 1, 1)
    h = torch.tensor([0.5, 0.3, 0.2]).view(1, 3, 1, 1)
    kl = sum(a * math.log(a / b) for a, b in zip((0.7, 0.2, 0.1), (0.5, 0.3, 0.2)))
    assert constrain_loss(h, q).item() == pytest.approx(kl, rel=1e-6)
    # the ratio is clipped to [0.05, 20]: Q/H = 0.9/0.01 = 90 counts as 20
    q = torch.tensor([0.9, 0.1]).view(1, 2, 1, 1)
    h = torch.tensor([0.01, 0.99]).view(1, 2, 1, 1)
    assert constrain_loss(h, q).item() == pytest.approx(0.9 * math.log(20) + 0.1 * math.log(0.1 / 0.99), rel=1e-6)


def test_seeds_from_cues():
    cams = np.zeros((2, 4, 5), np.float32)
    cams[0, :2, :2] = [[2.0, 1.0], [0.5, 1.0]]  # class 3, max 2: ≥ 0.4 is a seed, < 0.2 is background
    cams[0, 3, 4] = 0.3  # 0.15 of the max: neither
    cams[1, 1:3, 1:3] = 1.0  # class 0
    out = dsrg_seeds(cams, [3, 0], fg_threshold=0.2, background="low_cam", bg_threshold=0.1)
    want = np.array([[4, 4, 0, 0, 0],
                     [4, 255, 1, 0, 0],  # (1, 1) is claimed by both classes
                     [0, 1, 1, 0, 0],
                     [0, 0, 0, 0, 255]], np.uint8)
    assert (out == want).all(), out
    # the saliency rule: background where saliency < 0.06, unlabelled elsewhere unless a class claims it
    sal = np.full((4, 5), 0.5, np.float32)
    sal[3] = 0.0
    out = dsrg_seeds(cams, [3, 0], background="saliency", saliency=sal)
    assert (out[3] == 0).all() and out[0, 4] == 255 and out[0, 0] == 4
    # an untagged image is all background; bad input is refused with a clear message
    assert (dsrg_seeds(np.zeros((0, 3, 3)), []) == 0).all()
    with pytest.raises(ValueError, match="saliency map"):
        dsrg_seeds(cams, [3, 0], background="saliency")
    with pytest.raises(ValueError, match="cams must be"):
        dsrg_seeds(cams, [3])


def test_seeds_at_and_tags_from_seeds():
    full = torch.full((1, 8, 8), 255, dtype=torch.uint8)
    full[0, :4, :4] = 2
    full[0, 4:, 4:] = 0
    small = seeds_at(full.long(), (2, 2))
    assert small.tolist() == [[[2, U], [U, 0]]]
    assert tags_from_seeds(small, 4).tolist() == [[True, False, True, False]]


def _scene():
    """A 2-class scene: an image with a bright square, logits that are confident inside it, seeds at its centre."""
    image = torch.zeros(1, 3, 32, 32)
    image[..., 8:24, 8:24] = 255.0
    logits = torch.full((1, 2, 8, 8), -3.0)
    logits[0, 1, 2:6, 2:6] = 3.0
    logits[0, 1, 3:5, 3:5] = 5.0  # the seeds are surer than the rest of the square
    logits[0, 0] = -logits[0, 1]
    seeds = torch.full((1, 8, 8), U)
    seeds[0, 3:5, 3:5] = 1
    seeds[0, 0, 0] = 0
    return image, logits.requires_grad_(), seeds, torch.tensor([[True, True]])


def test_a_step_grows_the_seeds_and_the_grown_labels_change_the_loss():
    image, logits, seeds, tags = _scene()
    crf = LocalCRFParams(iterations=2, window=5)
    grow = DSRGSettings(growing="official", fg_threshold=0.85, bg_threshold=0.99, crf=crf)
    fixed = DSRGSettings(growing="none", crf=crf)
    lg, labels = dsrg_step(logits, seeds, tags, grow, image, 4.0)
    lf, same = dsrg_step(logits, seeds, tags, fixed, image, 4.0)
    assert torch.equal(same, seeds)
    assert (labels == 1).sum() == 16 and (labels == 0).sum() > 1  # the square and the confident background
    assert lg["loss_seed_fg"].item() != pytest.approx(lf["loss_seed_fg"].item())
    assert set(lg) == {"loss_seed_bg", "loss_seed_fg", "loss_constrain"}
    sum(lg.values()).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    # growing on the softmax without the CRF needs no image
    nocrf = DSRGSettings(grow_on_crf=False, constrain_weight=0.0)
    losses, labels2 = dsrg_step(logits, seeds, tags, nocrf)
    assert "loss_constrain" not in losses and (labels2 == 1).sum() == 16
    with pytest.raises(ValueError, match="needs the images"):
        dsrg_step(logits, seeds, tags, grow)


def test_the_retraining_targets_are_plain_cross_entropy_with_ignore():
    logits = torch.randn(1, 3, 2, 2)
    labels = torch.tensor([[[0, 2], [U, 1]]])
    losses, _ = dsrg_step(logits, labels, torch.ones(1, 3, dtype=bool), DSRGSettings(targets="labels"))
    want = torch.nn.functional.cross_entropy(logits, labels, ignore_index=-1)
    assert losses["loss_sem_seg"].item() == pytest.approx(want.item())
    losses, _ = dsrg_step(logits, torch.full((1, 2, 2), U), torch.ones(1, 3, dtype=bool), DSRGSettings(targets="labels"))
    assert losses["loss_sem_seg"].item() == 0.0
    with pytest.raises(ValueError, match="GROWING"):
        DSRGSettings(growing="sometimes")


def test_final_and_grown_label_maps():
    from wsis.methods.dsrg.labels import final_label_map, grown_label_map

    probs = np.zeros((4, 2, 3), np.float32)
    probs[0] = [[0.2, 0.1, 0.995], [0.3, 0.1, 0.1]]
    probs[1] = [[0.1, 0.9, 0.005], [0.1, 0.1, 0.1]]
    probs[3] = [[0.7, 0.0, 0.0], [0.6, 0.8, 0.8]]  # class 2: the best on most pixels, but not tagged in case 1
    probs[2] = 1 - probs.sum(0)
    # tags [0]: class 2 (channel 3) cannot win; pixel (0, 0) goes to background (0.2 vs 0.1)
    assert final_label_map(probs, [0]).tolist() == [[0, 1, 0], [0, 0, 0]]
    assert final_label_map(probs, [0, 2]).tolist() == [[3, 1, 0], [3, 3, 3]]
    seeds = np.full((2, 3), 255, np.uint8)
    seeds[1, 1] = 3
    seeds[0, 2] = 0
    grown = grown_label_map(probs, seeds, [0, 2], crf=None, fg_threshold=0.75)
    assert grown.tolist() == [[255, 255, 0], [255, 3, 3]]  # 0.7 and 0.6 are below θ_f
    assert grown_label_map(probs, seeds, [0, 2], crf=None, variant="none").tolist() == seeds.tolist()
    with pytest.raises(ValueError, match="tags"):
        final_label_map(probs, [5])


def test_settings_from_config_carry_the_crf_normalisation():
    from fvcore.common.config import CfgNode

    from wsis.methods.dsrg.config import add_dsrg_config

    cfg = add_dsrg_config(CfgNode({"MODEL": CfgNode()}))
    assert DSRGSettings.from_config(cfg).crf.normalization == "symmetric"  # densecrf's (the official CRF's)
    cfg.MODEL.DSRG.CRF.NORMALIZATION = "none"
    cfg.MODEL.DSRG.CRF.WINDOW = 7
    s = DSRGSettings.from_config(cfg)
    assert (s.crf.normalization, s.crf.window) == ("none", 7)
    cfg.MODEL.DSRG.CRF.NORMALIZATION = "mean"
    with pytest.raises(ValueError, match="normalization"):
        DSRGSettings.from_config(cfg)
