"""IRNet's random walk (Eqs. 12–13): the sparse walk equals the official dense form, and what a walk must preserve."""
import pytest
import torch

from wsis.methods.irnet.walk import (
    dense_transition_matrix,
    pair_affinity_edges,
    random_walk,
    random_walk_dense,
    transition_matrix,
)


def _random(seed, m, h, w):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(m, h, w, generator=g), torch.rand(h, w, generator=g) ** 3


@pytest.mark.parametrize("seed,shape,radius,steps", [(0, (3, 7, 9), 5, 256), (1, (2, 12, 5), 3, 10),
                                                      (2, (1, 1, 6), 5, 64), (3, (4, 10, 10), 5, 1)])
def test_sparse_walk_equals_dense(seed, shape, radius, steps):
    scores, boundary = _random(seed, *shape)
    sparse = random_walk(scores, boundary, radius=radius, beta=10, steps=steps)
    dense = random_walk_dense(scores, boundary, radius=radius, beta=10, steps=steps)
    assert sparse.shape == scores.shape
    assert torch.allclose(sparse, dense, atol=1e-5), (sparse - dense).abs().max()


def test_transition_rows_sum_to_one_and_match_dense():
    _, boundary = _random(4, 1, 6, 8)
    t = transition_matrix(boundary, radius=5, beta=10)
    ones = torch.ones(48, 1, dtype=torch.float64)
    assert torch.allclose(t @ ones, ones, atol=1e-12)
    assert torch.allclose(t.to_dense(), dense_transition_matrix(boundary, 5, 10), atol=1e-12)


def test_walk_conserves_degree_weighted_mass_and_constants():
    scores, boundary = _random(5, 2, 9, 7)
    rows, cols, vals = pair_affinity_edges(boundary, 5, 10)
    degree = torch.zeros(63, dtype=vals.dtype).index_add_(0, rows, vals).view(9, 7).float()  # the walk's stationary weights
    start = scores * (1 - boundary)
    out = random_walk(scores, boundary, steps=17)
    assert torch.allclose((out * degree).sum((1, 2)), (start * degree).sum((1, 2)), rtol=1e-5)
    flat = random_walk(torch.ones(1, 9, 7), torch.zeros(9, 7), steps=256)  # no boundary: a constant stays constant
    assert torch.allclose(flat, torch.ones(1, 9, 7), atol=1e-5)


def test_a_boundary_stops_the_walk():
    boundary = torch.zeros(8, 12)
    boundary[:, 6] = 1.0  # a wall: every pair crossing column 6 has affinity 0
    seed = torch.zeros(1, 8, 12)
    seed[0, 4, 1] = 1.0
    out = random_walk(seed, boundary, radius=5, beta=10, steps=256)
    assert out[0, :, 7:].abs().max() == 0  # nothing crosses
    assert out[0, :, :6].min() > 0  # the left side is reached everywhere
    assert out[0, :, 6].abs().max() == 0  # boundary pixels are damped to 0 and reach nothing


def test_empty_and_bad_inputs():
    boundary = torch.zeros(4, 5)
    assert random_walk(torch.zeros(0, 4, 5), boundary).shape == (0, 4, 5)
    with pytest.raises(ValueError, match="same grid"):
        random_walk(torch.zeros(1, 4, 4), boundary)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        pair_affinity_edges(torch.zeros(1, 4, 5))
