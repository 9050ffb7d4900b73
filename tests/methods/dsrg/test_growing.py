"""Seeded region growing (DSRG §3.3): hand-made maps, the two variants, and the per-pixel queue oracle."""
import numpy as np
import pytest
import torch

from wsis.methods.dsrg.growing import candidates, region_growing, region_growing_reference

U = -1  # unlabelled


def _probs(*maps):
    """(1, C, h, w) from C (h, w) lists of foreground scores; channel 0 made 1 - max of the others."""
    fg = torch.tensor(maps, dtype=torch.float32)
    return torch.cat([1 - fg.max(0, keepdim=True).values, fg])[None]


def test_a_blob_grows_to_its_connected_region_and_stops_at_the_threshold():
    cls1 = [[0.9, 0.95, 0.9, 0.0, 0.9],
            [0.9, 0.90, 0.5, 0.0, 0.9],
            [0.0, 0.00, 0.0, 0.0, 0.9]]
    probs = _probs(cls1)
    seeds = torch.full((1, 3, 5), U)
    seeds[0, 0, 1] = 1
    seeds[0, 2, 0] = 0  # a background seed
    tags = torch.tensor([[True, True]])
    for variant in ("official", "bfs"):
        out = region_growing(probs, seeds, tags, 0.85, 0.99, variant)[0]
        want = torch.tensor([[1, 1, 1, U, U], [1, 1, U, U, U], [U, U, U, U, U]])
        # the right column is confident class 1 but not connected to its seed; 0.5 is below θ_f and θ_b;
        # the background (1.0 > θ_b) grows from its seed
        want[2, :4] = 0
        want[:2, 3] = 0
        assert torch.equal(out, want), (variant, out)


def test_growing_never_crosses_another_class_and_ignores_classes_not_in_the_tags():
    a = [[0.9, 0.9, 0.0, 0.0]]
    b = [[0.0, 0.0, 0.9, 0.9]]
    probs = _probs(a, b)  # (1, 3, 1, 4)
    probs[0, 0] = 0.0
    seeds = torch.tensor([[[1, U, 2, U]]])
    out = region_growing(probs, seeds, torch.tensor([[True, True, True]]))[0]
    assert out.tolist() == [[1, 1, 2, 2]]
    # class 2 not tagged: its confident pixels fall to the best allowed class (bg 0.0 / class 1 0.0: not candidates)
    out = region_growing(probs, seeds, torch.tensor([[True, True, False]]))[0]
    assert out.tolist() == [[1, 1, 2, U]]
    # a chain of class 1 candidates through a class 2 seed does not connect
    probs = _probs([[0.9, 0.9, 0.9, 0.9]], [[0.0, 0.0, 0.0, 0.0]])
    seeds = torch.tensor([[[1, U, 2, U]]])
    out = region_growing(probs, seeds, torch.tensor([[True, True, True]]))[0]
    assert out.tolist() == [[1, 1, 2, U]]


def test_official_and_bfs_differ_on_a_seed_below_the_threshold():
    probs = _probs([[0.5, 0.9, 0.9]])  # the seed pixel itself is not confident
    seeds = torch.tensor([[[1, U, U]]])
    tags = torch.tensor([[True, True]])
    assert region_growing(probs, seeds, tags, variant="official")[0].tolist() == [[1, U, U]]
    assert region_growing(probs, seeds, tags, variant="bfs")[0].tolist() == [[1, 1, 1]]


def test_candidates_follow_eq3():
    probs = _probs([[0.9, 0.86, 0.84, 0.3]])
    probs[0, 0, 0, 3] = 0.995
    assert candidates(probs, torch.tensor([[False, True]]))[0].tolist() == [[1, 1, -1, 0]]


@pytest.mark.parametrize("variant", ["official", "bfs"])
def test_equals_the_queue_oracle_on_random_cases(variant):
    g = torch.Generator().manual_seed(0)
    for trial in range(6):
        b, c, h, w = 3, 5, 17, 23
        logits = torch.randn(b, c, h, w, generator=g) * 3
        logits = torch.nn.functional.avg_pool2d(logits, 3, 1, 1) * 4  # smooth blobs
        probs = torch.softmax(logits, 1)
        seeds = torch.randint(0, c, (b, h, w), generator=g)
        seeds[torch.rand(b, h, w, generator=g) > 0.08] = U
        tags = torch.rand(b, c, generator=g) > 0.4
        got = region_growing(probs, seeds, tags, 0.6, 0.7, variant)
        want = region_growing_reference(probs, seeds, tags, 0.6, 0.7, variant)
        assert np.array_equal(got.numpy(), want), trial
        assert (got != U).sum() > (seeds != U).sum()  # something grew
        assert torch.equal(got[seeds != U], seeds[seeds != U])  # seeds kept


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="seeds must be"):
        region_growing(torch.rand(1, 2, 3, 3), torch.zeros(1, 3, 4, dtype=torch.long), torch.ones(1, 2, dtype=bool))
    with pytest.raises(ValueError, match="variant"):
        region_growing(torch.rand(1, 2, 3, 3), torch.zeros(1, 3, 3, dtype=torch.long), torch.ones(1, 2, dtype=bool),
                       variant="dfs")
