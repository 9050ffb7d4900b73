"""
Box-supervised mask losses on a proposal's M×M mask grid, as pure functions of tensors (detectron2-free).

- BBTP (Hsu et al., NeurIPS 2019; restated as BoxCaseg §3.1, §3.3.1 Eq. 1–2): rows and columns of the grid are MIL bags
  (:func:`mil_bag_loss`) plus an 8-neighbour smoothness term (:func:`mil_pairwise_loss`).
- BoxInst (Tian et al., CVPR 2021; not in shared/papers, so cited by term rather than equation number), applied per
  ROI: projection Dice loss (:func:`projection_loss`) and the colour-gated pairwise loss (:func:`color_similarity`,
  :func:`pairwise_color_loss`, :func:`warmup_factor`).

Every loss takes per-instance logits ``(N, M, M)``: pick each instance's class channel from the head's
``(N, C, M, M)`` or ``(N, 1, M, M)`` output with :func:`wsis.methods.proxy_mask_rcnn.losses.select_class_logits` first.
The box enters as the ``(N, M, M)`` boolean grid of :func:`box_to_grid_mask`. With no instance every loss returns
``logits.sum() * 0``.
"""
import torch
import torch.nn.functional as F


def _check_logits(logits, box_mask=None, name="box_mask"):
    if logits.dim() != 3:
        raise ValueError(
            f"logits must be (N, M, M) per-instance logits (use select_class_logits on (N, C, M, M)), "
            f"got shape {tuple(logits.shape)}"
        )
    if box_mask is not None and tuple(box_mask.shape) != tuple(logits.shape):
        raise ValueError(f"{name} shape {tuple(box_mask.shape)} does not match logits shape {tuple(logits.shape)}")


def _axis_cells(g0, g1, p0, p1, m):
    """(N, m) bool: the cells along one axis of [p0, p1] whose centre lies in [g0, g1] (see box_to_grid_mask)."""
    size = (p1 - p0).clamp(min=0)
    centres = p0[:, None] + (torch.arange(m, device=p0.device, dtype=p0.dtype) + 0.5)[None] * (size[:, None] / m)
    inside = (centres >= g0[:, None]) & (centres <= g1[:, None])
    lo, hi = torch.maximum(g0, p0), torch.minimum(g1, p1)
    missed = (hi > lo) & ~inside.any(dim=1)  # the box overlaps the proposal but is thinner than a cell
    if bool(missed.any()):
        idx = (((lo + hi) / 2 - p0) / size.clamp(min=torch.finfo(p0.dtype).tiny) * m).floor().clamp(0, m - 1).long()
        rows = missed.nonzero()[:, 0]
        inside[rows, idx[rows]] = True
    return inside


def box_to_grid_mask(gt_boxes, proposal_boxes, mask_size):
    """
    Rasterise each proposal's matched GT box onto the proposal's M×M grid (BBTP's projected box).

    Cell (i, j) of proposal (x0, y0, x1, y1) covers x ∈ [x0 + j·w/M, x0 + (j+1)·w/M) with w = x1 − x0, y likewise
    with row i.
    Rule: a cell is inside iff its **centre** lies in the closed GT box (a centre exactly on the box edge is inside).
    Along an axis where the GT box overlaps the proposal with positive length but contains no cell centre (a box thinner
    than one cell), the cell holding the middle of the overlap is marked, so an overlapping box never rasterises to
    nothing. A GT box covering the proposal marks every cell; a disjoint one marks none. A degenerate proposal (x1 ≤ x0
    or y1 ≤ y0, treated as zero size) samples its corner point: along that axis every cell is inside iff the point lies
    in the GT box.

    Args:
        gt_boxes (Tensor): (N, 4) matched GT boxes, XYXY, image coordinates.
        proposal_boxes (Tensor): (N, 4) proposal boxes, XYXY, same coordinates.
        mask_size (int): M, the side of the mask grid (28 for Mask R-CNN).

    Returns:
        Tensor[bool]: (N, M, M), row index ↔ y, column index ↔ x.
    """
    if gt_boxes.dim() != 2 or gt_boxes.size(-1) != 4 or tuple(gt_boxes.shape) != tuple(proposal_boxes.shape):
        raise ValueError(
            f"gt_boxes and proposal_boxes must both be (N, 4), "
            f"got {tuple(gt_boxes.shape)} and {tuple(proposal_boxes.shape)}"
        )
    if int(mask_size) < 1:
        raise ValueError(f"mask_size must be positive, got {mask_size}")
    m = int(mask_size)
    g = gt_boxes.detach().to(torch.float64)
    p = proposal_boxes.detach().to(device=g.device, dtype=torch.float64)
    in_x = _axis_cells(g[:, 0], g[:, 2], p[:, 0], p[:, 2], m)
    in_y = _axis_cells(g[:, 1], g[:, 3], p[:, 1], p[:, 3], m)
    return in_y[:, :, None] & in_x[:, None, :]


def mil_bag_loss(logits, box_mask, positive_within_box=False):
    """
    BBTP's MIL unary term (BoxCaseg Eq. 1, first two sums): every row and every column of the grid is a bag; a bag is
    positive iff it contains at least one in-box cell, negative otherwise. Bag score = max of the bag's logits; loss =
    BCE-with-logits of the bag scores against the bag labels (max of logits = logit of the max probability, so this is
    −log max S or −log(1 − max S) of Eq. 1).

    Normalisation: **mean over all N·(H + W) bags** (the official BBTP code takes the mean of BCE over every proposal's
    row and column bags), not Eq. 1's sum.

    Args:
        logits (Tensor): (N, H, W) per-instance mask logits (H = W = M for Mask R-CNN).
        box_mask (Tensor[bool]): (N, H, W) cells inside the projected GT box (:func:`box_to_grid_mask`).
        positive_within_box (bool): False (default; DESIGN.md, and the official code max-pools rows/columns): a
            positive bag's score is the max over the **whole** row/column, cells outside the box included. True: the
            max over the bag's in-box cells only ("the object lies in the box"). Negative bags have no in-box cell
            either way.

    Returns:
        Tensor: scalar.
    """
    _check_logits(logits, box_mask)
    n, h, w = logits.shape
    if n == 0 or h == 0 or w == 0:
        return logits.sum() * 0
    inside = box_mask.bool()
    labels, scores = [], []
    for dim in (2, 1):  # dim 2: rows (max over x); dim 1: columns (max over y)
        positive = inside.any(dim=dim)
        score = logits.amax(dim=dim)
        if positive_within_box:
            in_box = logits.masked_fill(~inside, float("-inf")).amax(dim=dim)
            score = torch.where(positive, in_box, score)
        labels.append(positive.flatten())
        scores.append(score.flatten())
    labels, scores = torch.cat(labels), torch.cat(scores)
    return F.binary_cross_entropy_with_logits(scores, labels.to(scores.dtype))


def _shift(x, dy, dx):
    """y[..., i, j] = x[..., i + dy, j + dx] (zero outside the grid), and the (H, W) bool of in-grid neighbours."""
    h, w = x.shape[-2:]
    r = max(abs(dy), abs(dx))
    pad = F.pad(x, (r, r, r, r))[..., r + dy:r + dy + h, r + dx:r + dx + w]
    valid = torch.zeros(h, w, dtype=torch.bool, device=x.device)
    valid[max(0, -dy):min(h, h - dy), max(0, -dx):min(w, w - dx)] = True
    return pad, valid


def neighbour_offsets(kernel_size=3, dilation=1):
    """The (dy, dx) offsets of a dilated kernel_size×kernel_size neighbourhood without its centre, in raster order
    (row by row); channel k of :func:`color_similarity` is the neighbour at offset k."""
    if kernel_size < 1 or kernel_size % 2 == 0 or dilation < 1:
        raise ValueError(f"kernel_size must be odd and positive and dilation positive, got {kernel_size}, {dilation}")
    r = kernel_size // 2
    return [(dy * dilation, dx * dilation) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if (dy, dx) != (0, 0)]


def mil_pairwise_loss(logits, weight_mask=None):
    """
    BBTP's smoothness term φ (BoxCaseg Eq. 2): (σ(s_p) − σ(s_p'))² over every pixel p and its 8-connected neighbours p'
    inside the grid. As in Eq. 2 the sum runs over p and then p' ∈ Ω(p), so each unordered pair is counted **twice**
    (once from each end); it is divided by the number of those ordered pairs, i.e. the value is the mean squared
    probability difference per neighbour pair. Neighbours outside the grid are skipped (the official code zero-pads,
    which also pulls border probabilities towards 0). The weight 0.05 of Eq. 1 is applied by the caller, not here.

    Args:
        logits (Tensor): (N, H, W) per-instance mask logits.
        weight_mask (Tensor or None): (N, H, W) bool or float weight of each centre pixel p (e.g. restrict φ to some
            pixels); the loss is Σ w(p)·Σ_p' d² / Σ w(p)·|Ω(p) ∩ grid|. None: every pixel has weight 1.

    Returns:
        Tensor: scalar (``logits.sum() * 0`` when no pair has weight).
    """
    _check_logits(logits, weight_mask, "weight_mask")
    if logits.numel() == 0:
        return logits.sum() * 0
    probs = logits.sigmoid()
    weight = torch.ones_like(probs) if weight_mask is None else weight_mask.to(probs.dtype)
    total, count = probs.new_zeros(()), probs.new_zeros(())
    for dy, dx in neighbour_offsets(3, 1):
        other, valid = _shift(probs, dy, dx)
        wv = weight * valid.to(probs.dtype)
        total = total + (wv * (probs - other) ** 2).sum()
        count = count + wv.sum()
    if count <= 0:
        return logits.sum() * 0
    return total / count


def _dice_loss(x, target, eps=1e-5):
    """(N, L) → (N,): BoxInst's Dice loss 1 − 2Σxy / (Σx² + Σy² + eps)."""
    return 1.0 - 2.0 * (x * target).sum(dim=1) / ((x ** 2).sum(dim=1) + (target ** 2).sum(dim=1) + eps)


def projection_loss(logits, box_mask):
    """
    BoxInst's projection term (Tian et al. 2021) on the ROI grid: the max-projections of σ(logits) onto the x axis
    (max over rows) and onto the y axis (max over columns) are matched to the same projections of the box mask by the
    Dice loss 1 − 2Σxy / (Σx² + Σy² + 1e-5); the two axes are summed per instance, then averaged over instances.

    Args:
        logits (Tensor): (N, H, W) per-instance mask logits.
        box_mask (Tensor[bool]): (N, H, W) cells inside the GT box (:func:`box_to_grid_mask`).

    Returns:
        Tensor: scalar.
    """
    _check_logits(logits, box_mask)
    if logits.numel() == 0:
        return logits.sum() * 0
    probs = logits.sigmoid()
    box = box_mask.to(probs.dtype)
    onto_x = _dice_loss(probs.amax(dim=1), box.amax(dim=1))
    onto_y = _dice_loss(probs.amax(dim=2), box.amax(dim=2))
    return (onto_x + onto_y).mean()


def color_similarity(lab_patches, kernel_size=3, dilation=2, theta=2.0):
    """
    BoxInst's colour similarity S_e = exp(−‖c_i − c_j‖ / θ) between each grid cell i and its neighbours j of a dilated
    kernel_size×kernel_size window (BoxInst: k = 3, dilation 2, θ = 2), on ROI-aligned Lab patches (:func:`wsis.core.color.rgb_to_lab`).
    Neighbours outside the grid get similarity 0 (so they fall below any positive threshold). BoxInst works on the
    whole image downsampled by 4; here the window spans cells of each proposal's grid instead.

    Args:
        lab_patches (Tensor): (N, 3, M, M) Lab colours of each proposal's grid cells.
        kernel_size (int), dilation (int), theta (float): as above.

    Returns:
        Tensor: (N, K²−1, M, M); channel k is the neighbour at ``neighbour_offsets(kernel_size, dilation)[k]``.
    """
    if lab_patches.dim() != 4 or lab_patches.size(1) != 3:
        raise ValueError(f"lab_patches must be (N, 3, M, M), got shape {tuple(lab_patches.shape)}")
    sims = []
    for dy, dx in neighbour_offsets(kernel_size, dilation):
        other, valid = _shift(lab_patches, dy, dx)
        sim = torch.exp(-torch.linalg.vector_norm(lab_patches - other, dim=1) / theta)
        sims.append(sim * valid.to(sim.dtype))
    return torch.stack(sims, dim=1)


def pairwise_color_loss(logits, similarity, box_mask, threshold=0.3, dilation=2):
    """
    BoxInst's pairwise affinity term (Tian et al. 2021) on the ROI grid: for an edge (i, j) with P(y_i = y_j) =
    p_i·p_j + (1 − p_i)(1 − p_j), the loss is −log P(y_i = y_j), computed stably as −logaddexp(logσ(s_i) + logσ(s_j),
    logσ(−s_i) + logσ(−s_j)). Only edges with similarity ≥ ``threshold`` whose centre cell i lies in the box count
    (each ordered edge (i, j) is an entry of ``similarity``); the loss is their mean. Multiply by
    :func:`warmup_factor` as BoxInst does.

    Args:
        logits (Tensor): (N, M, M) per-instance mask logits.
        similarity (Tensor): (N, K²−1, M, M) from :func:`color_similarity` (same ``dilation``).
        box_mask (Tensor[bool]): (N, M, M) cells inside the GT box.
        threshold (float): BoxInst's τ = 0.3.
        dilation (int): the dilation ``similarity`` was computed with; K is inferred from its channels.

    Returns:
        Tensor: scalar (``logits.sum() * 0`` when no edge counts).
    """
    _check_logits(logits, box_mask)
    n, h, w = logits.shape
    k = int(round((similarity.size(1) + 1) ** 0.5)) if similarity.dim() == 4 else 0
    if similarity.dim() != 4 or k * k - 1 != similarity.size(1) or tuple(similarity.shape[2:]) != (h, w) \
            or similarity.size(0) != n:
        raise ValueError(f"similarity must be (N, K²-1, M, M) matching logits {tuple(logits.shape)}, "
                         f"got {tuple(similarity.shape)}")
    if logits.numel() == 0:
        return logits.sum() * 0
    log_fg, log_bg = F.logsigmoid(logits), F.logsigmoid(-logits)
    centre = box_mask.bool()
    total, count = logits.new_zeros(()), logits.new_zeros(())
    for c, (dy, dx) in enumerate(neighbour_offsets(k, dilation)):
        fg_j, valid = _shift(log_fg, dy, dx)
        bg_j, _ = _shift(log_bg, dy, dx)
        edge = (similarity[:, c] >= threshold) & centre & valid
        loss = -torch.logaddexp(log_fg + fg_j, log_bg + bg_j)
        weight = edge.to(loss.dtype)
        total = total + (loss * weight).sum()
        count = count + weight.sum()
    if count <= 0:
        return logits.sum() * 0
    return total / count


def warmup_factor(iteration, warmup_iters=10000):
    """BoxInst's linear warm-up of the pairwise term: min(iteration / warmup_iters, 1) (1 when warmup_iters ≤ 0)."""
    if warmup_iters <= 0:
        return 1.0
    return min(max(float(iteration), 0.0) / float(warmup_iters), 1.0)
