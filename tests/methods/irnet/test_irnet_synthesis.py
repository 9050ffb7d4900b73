"""IRNet's label synthesis for one image: two touching-free instances of one class are told apart by the
displacement field, the walk fills them, and the semantic map comes from the same walk; and the CAM baseline."""
import numpy as np
import pytest
import torch

from wsis.methods.irnet.synthesis import SynthesisSettings, cam_components, synthesize


def _towards(h, w, cy, cx):
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.stack([cy - ys, cx - xs])


def _scene():
    """A 12 × 20 grid (48 × 80 image at stride 4): two discs of class 2 at (5, 5) and (6, 14), radius 3.5."""
    h, w = 12, 20
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    a = (ys - 5) ** 2 + (xs - 5) ** 2 < 3.5 ** 2
    b = (ys - 6) ** 2 + (xs - 14) ** 2 < 3.5 ** 2
    disp = torch.zeros(2, h, w)
    disp[:, a] = _towards(h, w, 5.0, 5.0)[:, a]
    disp[:, b] = _towards(h, w, 6.0, 14.0)[:, b]
    boundary = torch.zeros(h, w)
    ring = torch.zeros(h, w, dtype=torch.bool)
    for m in (a, b):  # the class boundary: the pixels just outside each disc
        grown = torch.nn.functional.max_pool2d(m[None, None].float(), 3, 1, 1)[0, 0] > 0
        ring |= grown & ~m
    boundary[ring] = 1.0
    cams = torch.zeros(1, h, w)
    cams[0][a] = 1.0  # a peaked CAM: strong at the centres, weak at the edges
    cams[0][b] = 0.8
    cams[0] *= torch.exp(-((ys - 5) ** 2 + (xs - 5) ** 2) / 8) + torch.exp(-((ys - 6) ** 2 + (xs - 14) ** 2) / 8)
    return cams, boundary, disp, a, b


def test_two_instances_of_one_class_and_the_semantic_map():
    cams, boundary, disp, a, b = _scene()
    out = synthesize(cams, [2], boundary, disp, 4, 48, 80, SynthesisSettings(walk_steps=64, min_fragment=0.0))
    insts = out["instances"]
    assert len(insts) == 2 and {i["category_id"] for i in insts} == {2}
    grid = lambda m: torch.from_numpy(np.ascontiguousarray(m[2::4, 2::4]))  # noqa: E731  (cell centres)
    for inst, disc in zip(insts, (a, b)):  # scores descend: disc a (CAM 1.0) first
        cells = grid(inst["mask"])
        assert (cells & disc).sum() >= 0.8 * disc.sum() and not (cells & (b if disc is a else a)).any()
    assert insts[0]["score"] == pytest.approx(1.0)
    sem = out["semantic"]
    assert sem.shape == (48, 80) and sem.dtype == np.uint8 and set(np.unique(sem)) == {0, 3}
    assert (grid(sem == 3) & (a | b)).sum() >= 0.8 * (a | b).sum()
    assert not grid(sem == 3)[0, :].any()  # far background stays background


def test_without_the_walk_and_without_classes():
    cams, boundary, disp, a, b = _scene()
    no_walk = synthesize(cams, [2], boundary, disp, 4, 48, 80, SynthesisSettings(walk_steps=0, min_fragment=0.0))
    assert len(no_walk["instances"]) >= 2
    empty = synthesize(torch.zeros(0, 12, 20), [], boundary, disp, 4, 48, 80)
    assert empty["instances"] == [] and (empty["semantic"] == 0).all()
    with pytest.raises(ValueError, match="one map per class"):
        synthesize(cams, [1, 2], boundary, disp, 4, 48, 80)


def test_outputs_on_a_grid_off_by_rounding_are_resized():
    cams, boundary, disp, _, _ = _scene()
    out = synthesize(cams, [2], boundary[:11, :19], disp[:, :11, :19], 4, 48, 80,
                     SynthesisSettings(walk_steps=8, min_fragment=0.0))
    assert out["semantic"].shape == (48, 80)


def test_cam_components_baseline():
    cams, _, _, a, b = _scene()
    out = cam_components(cams, [2], 4, 48, 80, threshold=0.3, min_fragment=0.0)
    assert len(out) == 2 and out[0]["score"] >= out[1]["score"]
    assert cam_components(torch.zeros(0, 12, 20), [], 4, 48, 80, 0.3) == []
    merged = cam_components(cams + 0.5, [2], 4, 48, 80, threshold=0.3)  # everything above threshold: one blob
    assert len(merged) == 1
