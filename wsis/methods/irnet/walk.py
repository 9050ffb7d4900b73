"""
IRNet's random walk (§5.2, Eqs. 12–13): score maps propagated t times with the transition matrix T = S⁻¹ A^β of the
boundary-derived affinities of pixel pairs within a radius (5 at inference), after the boundary pixels are damped by
(1 − B).

The official ``misc/indexing.py`` builds the dense (HW × HW) matrix and squares it ``exp_times`` = 8 times (t = 2⁸ =
256): (HW)² floats, 1.4 GiB for a 640 × 480 image at 1/4, 64 GiB at 1024 × 2048. Here T is a sparse CSR matrix with
one row per pixel and one entry per pair within the radius (K ≈ 80 for radius 5, plus the self-loop), applied t times
(memory O(K·HW), any image size, on any device). :func:`random_walk_dense` keeps the official form as the test oracle
for small grids. Both compute vec(M*) = T^t vec(M ⊙ (1 − B)).

Shapes: M score maps, (H, W) the grid (1/4 of the image).
"""
import warnings

import torch

from .paths import PairIndex

__all__ = ["pair_affinity_edges", "transition_matrix", "dense_transition_matrix", "random_walk", "random_walk_dense"]


def pair_affinity_edges(boundary, radius: float = 5.0, beta: float = 10.0, dtype=torch.float64):
    """
    The non-zero entries of A^β: both directions of every in-bounds pair within ``radius`` and the self-loops
    (a_ii = 1, as the official ``affinity_sparse2dense``).

    Args:
        boundary (Tensor): (H, W) class-boundary probabilities B in [0, 1].
    Returns:
        (rows, cols, values): LongTensor (E,), LongTensor (E,), Tensor (E,) of ``dtype``: a_ij^β on the flattened
        grid.
    """
    if boundary.dim() != 2:
        raise ValueError(f"the boundary map must be (H, W), got {tuple(boundary.shape)}")
    h, w = boundary.shape
    index = PairIndex(radius)
    device = boundary.device
    aff = index.affinities(boundary.to(dtype)).pow(beta)  # (K, H, W), 0 out of bounds
    inside = index.in_bounds(h, w, device)
    src = torch.arange(h * w, device=device).view(h, w)
    rows, cols, vals = [src.flatten()], [src.flatten()], [torch.ones(h * w, device=device, dtype=dtype)]
    for k, (dy, dx) in enumerate(index.directions):
        keep = inside[k]
        i = src[keep]
        j = i + dy * w + dx
        a = aff[k][keep]
        rows += [i, j]
        cols += [j, i]
        vals += [a, a]
    return torch.cat(rows), torch.cat(cols), torch.cat(vals)


def transition_matrix(boundary, radius: float = 5.0, beta: float = 10.0, dtype=torch.float64):
    """T = S⁻¹ A^β (Eq. 12) as a sparse CSR (HW × HW) tensor of ``dtype``: each row sums to 1."""
    h, w = boundary.shape[-2:]
    rows, cols, vals = pair_affinity_edges(boundary, radius, beta, dtype)
    row_sum = torch.zeros(h * w, device=vals.device, dtype=vals.dtype).index_add_(0, rows, vals)
    vals = vals / row_sum[rows]
    coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (h * w, h * w), check_invariants=False).coalesce()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": CSR @ dense is all that is used
        warnings.simplefilter("ignore", UserWarning)
        return coo.to_sparse_csr()


def dense_transition_matrix(boundary, radius: float = 5.0, beta: float = 10.0, dtype=torch.float64):
    """The same T as a dense (HW × HW) tensor (the official form; only for small grids)."""
    h, w = boundary.shape[-2:]
    rows, cols, vals = pair_affinity_edges(boundary, radius, beta, dtype)
    a = torch.zeros(h * w, h * w, dtype=vals.dtype, device=vals.device)
    a.index_put_((rows, cols), vals, accumulate=True)
    return a / a.sum(1, keepdim=True)


def _check(scores, boundary):
    if scores.dim() != 3 or boundary.dim() != 2 or scores.shape[-2:] != boundary.shape:
        raise ValueError(f"scores must be (M, H, W) and boundary (H, W) on the same grid, got "
                         f"{tuple(scores.shape)} and {tuple(boundary.shape)}")


def random_walk(scores, boundary, radius: float = 5.0, beta: float = 10.0, steps: int = 256, dtype=torch.float64):
    """
    Eq. 13 with the sparse T: ``steps`` applications of T to the damped scores, accumulated in ``dtype``. In
    float32 the rows of T sum to 1 only within rounding, and 256 steps drift by up to ~1e-4 from the exact walk;
    float64 (the default) stays within 1e-8 of it at twice the memory of T's values.

    Args:
        scores (Tensor): (M, H, W) the maps to propagate (instance-wise or class CAMs). boundary (Tensor): (H, W).
        radius, beta, steps: IRNet's inference values 5, 10 and t = 256.
    Returns:
        Tensor: (M, H, W) float32.
    """
    _check(scores, boundary)
    m, h, w = scores.shape
    if m == 0 or steps == 0:
        return (scores.float() * (1 - boundary.float())).clone()
    t = transition_matrix(boundary, radius, beta, dtype)
    x = (scores.to(dtype) * (1 - boundary.to(dtype))).reshape(m, h * w).t().contiguous()  # (HW, M)
    for _ in range(int(steps)):
        x = t @ x
    return x.t().reshape(m, h, w).float()


def random_walk_dense(scores, boundary, radius: float = 5.0, beta: float = 10.0, steps: int = 256):
    """Eq. 13 with the dense T, raised to ``steps`` by repeated squaring when it is a power of 2 (the official way)."""
    _check(scores, boundary)
    m, h, w = scores.shape
    t = dense_transition_matrix(boundary, radius, beta, torch.float64)
    steps = int(steps)
    if steps > 0 and steps & (steps - 1) == 0:
        for _ in range(steps.bit_length() - 1):
            t = t @ t
    else:
        t = torch.linalg.matrix_power(t, steps)
    x = (scores.double() * (1 - boundary.double())).reshape(m, h * w)
    return (x @ t.t()).reshape(m, h, w).float()
