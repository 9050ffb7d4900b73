"""IRNet's label synthesis (§5): centroids (Eq. 10), the instance map (Eqs. 14–15), instance CAMs (Eq. 11) and the
instances and semantic map read off the walk's scores."""
import numpy as np
import pytest
import torch

from wsis.methods.irnet.instances import (
    cluster_centroids,
    instance_cams,
    instance_map,
    instances_from_scores,
    refine_centroids,
    semantic_from_scores,
)


def _towards(h, w, cy, cx, gain=1.0):
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return gain * torch.stack([cy - ys, cx - xs])


@pytest.mark.parametrize("gain", [1.0, 0.3])
def test_centroids_converge_on_a_radial_field(gain):
    # gain 0.3: every step covers 30 % of the way; 100 steps of Eq. 10 still reach the centre
    c = refine_centroids(_towards(15, 21, 6.0, 13.0, gain), steps=100)
    assert torch.allclose(c[0], torch.full((15, 21), 6.0), atol=1e-3)
    assert torch.allclose(c[1], torch.full((15, 21), 13.0), atol=1e-3)


def test_centroids_stay_on_the_grid_and_zero_steps_is_identity():
    d = torch.full((2, 4, 5), 10.0)  # pushes everything off the bottom right
    c = refine_centroids(d, steps=3)
    assert c[0].max() == 3 and c[1].max() == 4
    ident = refine_centroids(d, steps=0)
    assert ident[0, 2, 3] == 2 and ident[1, 2, 3] == 3
    with pytest.raises(ValueError, match=r"\(2, h, w\)"):
        refine_centroids(torch.zeros(3, 4, 4))


def _two_blobs():
    d = torch.zeros(2, 12, 20)
    d[:, 1:7, 1:7] = _towards(12, 20, 4.0, 4.0)[:, 1:7, 1:7]
    d[:, 3:11, 10:18] = _towards(12, 20, 7.0, 14.0)[:, 3:11, 10:18]
    # the background points far away (> 2.5) so it is no centroid candidate
    bg = torch.ones(12, 20, dtype=torch.bool)
    bg[1:7, 1:7] = bg[3:11, 10:18] = False
    d[0][bg] = 6.0
    return d


def test_grouping_separates_two_blobs():
    d = _two_blobs()
    comps = cluster_centroids(d, 2.5)
    assert comps[4, 4] > 0 and comps[7, 14] > 0 and comps[4, 4] != comps[7, 14]
    inst = instance_map(d, steps=100, unassigned="none")
    a, b = inst[1:7, 1:7], inst[3:11, 10:18]
    assert (a == a[0, 0]).all() and (b == b[0, 0]).all() and a[0, 0] != b[0, 0]
    assert set(inst.unique().tolist()) <= {-1, 0, 1, 2}
    # numbered by first appearance among assigned pixels: blob A (row 1) is 0, blob B is 1; the background moves
    # down to the last row, which is no centroid component: -1 ("none")
    assert a[0, 0] == 0 and b[0, 0] == 1 and inst[0, 0] == -1


def test_unassigned_pixels_own_instance_or_none():
    d = _two_blobs()
    none = instance_map(d, steps=100, unassigned="none")
    own = instance_map(d, steps=100, unassigned="own")
    assert (none == -1).sum() > 0 and (own == -1).sum() == 0
    assert int(own.max()) == int(none.max()) + 1
    with pytest.raises(ValueError, match="unassigned"):
        instance_map(d, unassigned="drop")


def test_instance_cams_by_hand():
    cams = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])
    inst = torch.tensor([[0, 1], [-1, 1]])
    out = instance_cams(cams, inst)
    assert out.shape == (4, 2, 2)
    assert out[0].tolist() == [[1, 0], [0, 0]] and out[1].tolist() == [[0, 2], [0, 4]]
    assert out[2].tolist() == [[5, 0], [0, 0]] and out[3].tolist() == [[0, 6], [0, 8]]


def test_instances_from_scores_fragments_scores_and_background():
    s = torch.zeros(2, 6, 8)  # one class (3) × two instances
    s[0, 0:2, 0:2] = 1.0
    s[0, 4:6, 0:2] = 0.5  # a second fragment of instance 0
    s[1, 0:3, 5:8] = 0.8
    s[1, 5, 7] = 0.1  # below the 0.25 background threshold after normalisation
    out = instances_from_scores(s, [3], num_instances=2, bg_threshold=0.25, min_fragment=0.0)
    assert [o["category_id"] for o in out] == [3, 3, 3]
    assert [o["score"] for o in out] == pytest.approx([1.0, 0.8, 0.5])
    assert out[0]["mask"].sum() == 4 and out[1]["mask"].sum() == 9 and out[2]["mask"].sum() == 4
    assert not out[0]["mask"][5, 7]
    # fragments under 10 % of the 48 pixels (4 < 4.8) are dropped
    kept = instances_from_scores(s, [3], num_instances=2, min_fragment=0.1)
    assert [o["mask"].sum() for o in kept] == [9]


def test_a_one_pixel_instance_and_empty_images():
    s = torch.zeros(1, 5, 5)
    s[0, 2, 2] = 0.7
    out = instances_from_scores(s, [0], num_instances=1, min_fragment=0.0)
    assert len(out) == 1 and out[0]["mask"].sum() == 1 and out[0]["score"] == pytest.approx(1.0)
    assert instances_from_scores(torch.zeros(0, 5, 5), [], num_instances=0) == []
    assert semantic_from_scores(torch.zeros(0, 5, 5), []).tolist() == np.zeros((5, 5), np.uint8).tolist()
    assert instance_cams(torch.zeros(0, 3, 3), torch.zeros(3, 3, dtype=torch.long)).shape == (0, 3, 3)
    with pytest.raises(ValueError, match="classes"):
        instances_from_scores(torch.zeros(3, 5, 5), [0], num_instances=2)


def test_semantic_from_scores_by_hand():
    s = torch.tensor([[[4.0, 0.5, 0.0]], [[0.0, 2.0, 0.9]]])  # global max 4: [1, .125, 0], [0, .5, .225]
    out = semantic_from_scores(s, [2, 7], bg_threshold=0.25)
    assert out.tolist() == [[3, 8, 0]] and out.dtype == np.uint8
