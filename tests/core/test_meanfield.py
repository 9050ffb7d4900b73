"""The local-window mean-field (wsis.core.meanfield) against a dense brute-force CRF and on hand-made cases."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wsis.core.meanfield import (LocalCRFParams, coarse_to_fine_mean_field, local_crf, local_kernels, local_mean_field,
                                 local_message)


def _dense_mean_field(unary, image, stride, p):
    """The fully-connected CRF's mean-field, O(N²), for one image: the definition the local one must equal."""
    n, h, w = unary.shape
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    pos = np.stack([ys.ravel(), xs.ravel()], 1) * stride
    col = image.reshape(3, -1).T
    d2 = ((pos[:, None] - pos[None]) ** 2).sum(-1)
    c2 = ((col[:, None] - col[None]) ** 2).sum(-1)
    gauss = np.exp(-d2 / (2 * p.gaussian_xy_std ** 2))
    bilat = np.exp(-d2 / (2 * p.bilateral_xy_std ** 2) - c2 / (2 * p.bilateral_rgb_std ** 2))
    if p.normalization == "symmetric":  # densecrf: D^-1/2 K D^-1/2 per kernel, the pixel itself included
        gauss, bilat = (m / np.sqrt(np.outer(m.sum(1), m.sum(1))) for m in (gauss, bilat))
    k = p.gaussian_weight * gauss + p.bilateral_weight * bilat
    if p.normalization == "none":
        np.fill_diagonal(k, 0.0)
    u = unary.reshape(n, -1)

    def softmax(x):
        e = np.exp(x - x.max(0))
        return e / e.sum(0)

    q = softmax(-u)
    for _ in range(p.iterations):
        q = softmax(-u + q @ k.T)
    return q.reshape(n, h, w)


@pytest.mark.parametrize("normalization", ["none", "symmetric"])
def test_equals_the_dense_crf_when_the_window_covers_the_map(normalization):
    g = torch.Generator().manual_seed(0)
    unary = torch.rand(3, 5, 6, generator=g, dtype=torch.float64) * 3
    image = torch.rand(3, 5, 6, generator=g, dtype=torch.float64) * 255
    p = LocalCRFParams(iterations=4, gaussian_weight=0.7, gaussian_xy_std=2.0, bilateral_weight=0.9,
                       bilateral_xy_std=6.0, bilateral_rgb_std=40.0, window=11, normalization=normalization)
    kern = local_kernels(image[None], 1.5, p)
    q = local_mean_field(unary[None], kern, p.iterations, p.window)[0]
    np.testing.assert_allclose(q.numpy(), _dense_mean_field(unary.numpy(), image.numpy(), 1.5, p), atol=1e-10)


def test_symmetric_normalisation_by_hand_and_its_bound():
    # two pixels 1 px apart, same colour: each kernel is [[1, a], [a, 1]] with a = exp(-1 / 2θ²); normalised by
    # (1 + a)^-1/2 on both sides: [[1, a], [a, 1]] / (1 + a)
    image = torch.zeros(1, 3, 1, 2, dtype=torch.float64)
    p = LocalCRFParams(gaussian_weight=2.0, gaussian_xy_std=1.0, bilateral_weight=0.0, window=3)
    a = np.exp(-0.5)
    kern = local_kernels(image, 1.0, p)[0].view(3, 3, 2)  # (window row, window column, pixel)
    assert kern[1, 1, 0].item() == pytest.approx(2.0 / (1 + a))  # itself
    assert kern[1, 2, 0].item() == pytest.approx(2.0 * a / (1 + a))  # its right neighbour
    assert kern[1, 0, 1].item() == pytest.approx(2.0 * a / (1 + a))  # and the other way
    assert kern[1, 0, 0].item() == 0.0 and kern[0].abs().sum() == 0  # nothing outside the map
    # on a flat image the unnormalised message grows with the window, the normalised one stays about w
    flat = torch.full((1, 3, 15, 15), 50.0)
    wide = LocalCRFParams(window=11, bilateral_xy_std=80.0)
    assert local_kernels(flat, 1.0, wide).sum(1).max() < 1.5 * (wide.gaussian_weight + wide.bilateral_weight)
    raw = LocalCRFParams(window=11, bilateral_xy_std=80.0, normalization="none")
    assert local_kernels(flat, 1.0, raw).sum(1).max() > 50 * raw.bilateral_weight
    with pytest.raises(ValueError, match="normalization"):
        LocalCRFParams(normalization="mean")


def test_zero_iterations_is_the_softmax_and_masked_labels_get_nothing():
    unary = torch.tensor([[[[0.0]], [[1.0]], [[2.0]]]])
    kern = torch.zeros(1, 9, 1)
    q = local_mean_field(unary, kern, 0, 3)
    np.testing.assert_allclose(q.flatten().numpy(), torch.softmax(-unary.flatten(), 0).numpy(), rtol=1e-6)
    q = local_mean_field(unary, kern, 2, 3, label_mask=torch.tensor([[False, True, True]]))
    assert q[0, 0].item() == 0.0 and abs(q.sum().item() - 1) < 1e-6


def test_an_isolated_pixel_takes_its_uniform_neighbourhood_and_an_edge_holds():
    # a flat image: a pixel that disagrees with all its neighbours is flipped
    probs = torch.full((1, 2, 7, 7), 0.1)
    probs[0, 1] = 0.9
    probs[0, :, 3, 3] = torch.tensor([0.8, 0.2])
    probs = probs / probs.sum(1, keepdim=True)
    flat = torch.full((1, 3, 7, 7), 100.0)
    q = local_crf(probs, flat, 1.0, LocalCRFParams(window=5, bilateral_xy_std=3.0, bilateral_rgb_std=10.0))
    assert q[0, 1, 3, 3] > 0.5
    # a colour edge between two labelled halves survives the bilateral kernel
    probs = torch.zeros(1, 2, 6, 8)
    probs[0, 0, :, :4], probs[0, 1, :, 4:] = 0.7, 0.7
    probs[0, 1, :, :4], probs[0, 0, :, 4:] = 0.3, 0.3
    image = torch.zeros(1, 3, 6, 8)
    image[..., 4:] = 255.0
    p = LocalCRFParams(window=5, gaussian_weight=0.0, bilateral_xy_std=3.0, bilateral_rgb_std=10.0)
    q = local_crf(probs, image, 1.0, p)
    assert (q.argmax(1) == probs.argmax(1)).all()


def test_gradients_flow_and_bad_input_is_refused():
    unary = torch.rand(2, 3, 4, 4, requires_grad=True)
    image = torch.rand(2, 3, 4, 4) * 255
    p = LocalCRFParams(iterations=3, window=3)
    q = local_mean_field(unary, local_kernels(image, 2.0, p), 3, 3)
    (q[:, 1] ** 2).sum().backward()
    assert unary.grad is not None and unary.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="odd"):
        LocalCRFParams(window=4)
    with pytest.raises(ValueError, match="kernels must be"):
        local_mean_field(unary, torch.zeros(2, 9, 3), 1, 3)
    with pytest.raises(ValueError, match="unary"):
        local_crf(torch.rand(1, 2, 3, 3), torch.rand(1, 3, 3, 3), 1.0, unary="energy")
    with pytest.raises(ValueError, match="label_mask"):
        local_mean_field(unary, local_kernels(image, 2.0, p), 1, 3, label_mask=torch.zeros(2, 3, dtype=torch.bool))


def test_prob_unary_and_a_downsampled_image():
    probs = torch.softmax(torch.randn(1, 3, 5, 5, generator=torch.Generator().manual_seed(1)), 1)
    image = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(2)) * 255
    p = LocalCRFParams(iterations=0, window=3)
    q = local_crf(probs, image, 8.0, p, unary="prob")  # no iteration: softmax(p)
    np.testing.assert_allclose(q.numpy(), torch.softmax(probs, 1).numpy(), rtol=1e-6)
    assert local_crf(probs, image, 8.0, LocalCRFParams(window=3)).shape == (1, 3, 5, 5)


def test_close_to_pydensecrf_with_secs_training_crf():
    """SEC's / DSRG's training CRF as its wrapper calls densecrf (unary −p, Gaussian w 3, bilateral w 10, θβ 13,
    widths in map cells), through pydensecrf: the local one with a window over the whole map gives the same
    marginals up to the permutohedral lattice's approximation."""
    dcrf = pytest.importorskip("pydensecrf.densecrf")
    rng = np.random.default_rng(0)
    h, w, n, stride = 12, 14, 3, 8.0
    image = np.zeros((h, w, 3), np.uint8)
    image[:, :7], image[:, 7:] = (200, 40, 40), (30, 160, 60)
    image = np.clip(image.astype(int) + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)
    logits = rng.normal(size=(n, h, w))
    logits[1, :, :7] += 1.0
    logits[2, :, 7:] += 1.0
    probs = torch.softmax(torch.tensor(logits), 0).numpy().astype(np.float32)
    for iterations, atol in ((1, 0.06), (10, 1e-3)):
        p = LocalCRFParams(iterations=iterations, window=2 * max(h, w) + 1)
        d = dcrf.DenseCRF2D(w, h, n)
        d.setUnaryEnergy(np.ascontiguousarray(-probs.reshape(n, -1)))
        d.addPairwiseGaussian(sxy=p.gaussian_xy_std / stride, compat=p.gaussian_weight)
        d.addPairwiseBilateral(sxy=p.bilateral_xy_std / stride, srgb=p.bilateral_rgb_std,
                               rgbim=np.ascontiguousarray(image), compat=p.bilateral_weight)
        expected = np.array(d.inference(iterations)).reshape(n, h, w)
        q = local_crf(torch.tensor(probs)[None].double(), torch.tensor(image).permute(2, 0, 1)[None].double(),
                      stride, p, unary="prob")[0].numpy()
        np.testing.assert_allclose(q, expected, atol=atol)
        assert (q.argmax(0) == expected.argmax(0)).all()


def test_coarse_to_fine_mean_field():
    """Stride 1 is the full-resolution mean-field; coarser, the last step adds the coarse message to the full
    unary (by hand: the upsampled message of the coarse marginals), and masked labels stay at 0."""
    g = torch.Generator().manual_seed(3)
    unary = torch.randn(1, 3, 8, 12, generator=g)
    image = torch.rand(1, 3, 8, 12, generator=g) * 255
    p = LocalCRFParams(iterations=3, window=5, bilateral_xy_std=10.0)
    full = local_mean_field(unary, local_kernels(image, 1.0, p), 3, 5)
    assert torch.allclose(coarse_to_fine_mean_field(unary, image, 1, p), full, atol=1e-6)
    q = coarse_to_fine_mean_field(unary, image, 4, p)
    small_p = F.adaptive_avg_pool2d(torch.softmax(-unary, 1), (2, 3))
    kern = local_kernels(F.adaptive_avg_pool2d(image, (2, 3)), 4.0, p)
    coarse = local_mean_field(-torch.log(small_p), kern, 2, 5)
    msg = F.interpolate(local_message(coarse, kern, 5), size=(8, 12), mode="bilinear", align_corners=False)
    assert torch.allclose(q, torch.softmax(-unary + msg, 1), atol=1e-6)
    assert torch.allclose(coarse_to_fine_mean_field(unary, image, 4, LocalCRFParams(iterations=0, window=5)),
                          torch.softmax(-unary, 1))
    masked = coarse_to_fine_mean_field(unary, image, 4, p, label_mask=torch.tensor([[True, False, True]]))
    assert (masked[:, 1] == 0).all() and torch.allclose(masked.sum(1), torch.ones(1, 8, 12), atol=1e-6)
