"""
Segment proposals for a box: Selective-Search-style hierarchical grouping of Felzenszwalb superpixels.

WSPS (§3.2) takes MCG's proposals without MCG's VOC-trained ranking and keeps, per box, the proposal with the highest
IoU with the box. MCG is MATLAB and its grouping is trained on VOC masks, so wsis uses the unsupervised grouping of
Selective Search (Uijlings et al., IJCV 2013) instead: Felzenszwalb & Huttenlocher superpixels (scikit-image) of the
box's window, greedily merged by the sum of colour, texture, size and fill similarities until one region is left;
every region ever formed is a proposal. Several strategies (colour space, superpixel scale) diversify the hierarchy,
as in Selective Search. Everything is deterministic (no random numbers; ties broken by region index).
"""
import heapq

import cv2
import numpy as np

COLOUR_BINS = 25  # Selective Search: 25 bins per colour channel
TEXTURE_ORIENTATIONS = 8
TEXTURE_BINS = 10  # Selective Search: 8 orientations x 10 bins per colour channel


def to_colour_space(image_bgr, space):
    """(h, w, 3) uint8 BGR → the same image in ``space``: "rgb", "lab" or "hsv" (OpenCV's 8-bit encodings)."""
    if space == "rgb":
        return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    if space == "lab":
        return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2LAB)
    if space == "hsv":
        return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2HSV)
    raise ValueError(f"unknown colour space {space!r}; use 'rgb', 'lab' or 'hsv'")


def felzenszwalb_superpixels(image, scale, sigma=0.8, min_size=20):
    """Felzenszwalb-Huttenlocher graph segmentation: (h, w, 3) uint8 → (h, w) int64 labels 0..n-1."""
    from skimage.segmentation import felzenszwalb

    labels = felzenszwalb(image, scale=float(scale), sigma=float(sigma), min_size=int(min_size))
    _, labels = np.unique(labels, return_inverse=True)
    return labels.reshape(image.shape[:2]).astype(np.int64)


def _histograms(image, labels, n):
    """Per-superpixel L1-normalised colour (n, 3·25) and texture (n, 3·8·10) histograms of Selective Search."""
    flat = labels.ravel()
    colour, texture = [], []
    for c in range(3):
        ch = image[..., c].astype(np.float32)
        bins = np.minimum((ch.ravel() * (COLOUR_BINS / 256.0)).astype(np.int64), COLOUR_BINS - 1)
        colour.append(np.bincount(flat * COLOUR_BINS + bins, minlength=n * COLOUR_BINS).reshape(n, COLOUR_BINS))
        smooth = cv2.GaussianBlur(ch, (0, 0), 1.0)  # Gaussian derivatives with σ = 1
        gx, gy = cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
        for k in range(TEXTURE_ORIENTATIONS):
            theta = 2 * np.pi * k / TEXTURE_ORIENTATIONS
            resp = np.maximum(gx * np.cos(theta) + gy * np.sin(theta), 0).ravel()
            top = resp.max()
            bins = np.minimum((resp * (TEXTURE_BINS / top)).astype(np.int64), TEXTURE_BINS - 1) if top > 0 else \
                np.zeros_like(flat)
            texture.append(np.bincount(flat * TEXTURE_BINS + bins, minlength=n * TEXTURE_BINS).reshape(n, TEXTURE_BINS))
    colour = np.concatenate(colour, 1).astype(np.float64)
    texture = np.concatenate(texture, 1).astype(np.float64)
    colour /= np.maximum(colour.sum(1, keepdims=True), 1)
    texture /= np.maximum(texture.sum(1, keepdims=True), 1)
    return colour, texture


def _adjacent_pairs(labels):
    """Sorted unique (i, j), i < j, of 4-connected neighbouring superpixels."""
    pairs = [np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], 1),
             np.stack([labels[:-1, :].ravel(), labels[1:, :].ravel()], 1)]
    pairs = np.concatenate(pairs)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    pairs = np.sort(pairs, axis=1)
    return np.unique(pairs, axis=0)


def region_hierarchy(image, labels):
    """
    Selective Search's hierarchical grouping of superpixels (all four similarities: colour, texture, size, fill):
    the most similar adjacent pair merges first, until no adjacent pair is left.

    Args:
        image (ndarray): (h, w, 3) uint8 image in the strategy's colour space.
        labels (ndarray): (h, w) int superpixel labels 0..n-1.

    Returns:
        (ndarray, ndarray, list): for the R regions, the n superpixels then one per merge in merge order:
        (R, 4) int boxes x0, y0, x1, y1 (exclusive), (R,) sizes in pixels, and each region's children (i, j), None
        for a superpixel.
    """
    h, w = labels.shape
    n = int(labels.max()) + 1
    total = float(h * w)
    size = np.bincount(labels.ravel(), minlength=n).astype(np.float64)
    ys, xs = np.mgrid[:h, :w]
    flat = labels.ravel()
    bbox = np.stack([np.full(n, w), np.full(n, h), np.zeros(n), np.zeros(n)], 1).astype(np.int64)
    np.minimum.at(bbox[:, 0], flat, xs.ravel())
    np.minimum.at(bbox[:, 1], flat, ys.ravel())
    np.maximum.at(bbox[:, 2], flat, xs.ravel() + 1)
    np.maximum.at(bbox[:, 3], flat, ys.ravel() + 1)
    colour, texture = _histograms(image, labels, n)

    cap = 2 * n - 1  # regions: n superpixels, then one per merge
    size = np.concatenate([size, np.zeros(cap - n)])
    bbox = np.concatenate([bbox, np.zeros((cap - n, 4), np.int64)])
    colour = np.concatenate([colour, np.zeros((cap - n, colour.shape[1]))])
    texture = np.concatenate([texture, np.zeros((cap - n, texture.shape[1]))])
    children = [None] * cap
    neighbours = [set() for _ in range(cap)]
    alive = np.zeros(cap, dtype=bool)
    alive[:n] = True

    def similarity(i, j):
        bb = (max(bbox[i, 2], bbox[j, 2]) - min(bbox[i, 0], bbox[j, 0])) * \
             (max(bbox[i, 3], bbox[j, 3]) - min(bbox[i, 1], bbox[j, 1]))
        return (np.minimum(colour[i], colour[j]).sum() + np.minimum(texture[i], texture[j]).sum()
                + 1.0 - (size[i] + size[j]) / total + 1.0 - (bb - size[i] - size[j]) / total)

    heap = []
    for i, j in _adjacent_pairs(labels).tolist():
        neighbours[i].add(j)
        neighbours[j].add(i)
        heap.append((-similarity(i, j), i, j))
    heapq.heapify(heap)
    nxt = n
    while heap:
        _, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):
            continue
        r = nxt
        nxt += 1
        size[r] = size[i] + size[j]
        bbox[r] = [min(bbox[i, 0], bbox[j, 0]), min(bbox[i, 1], bbox[j, 1]),
                   max(bbox[i, 2], bbox[j, 2]), max(bbox[i, 3], bbox[j, 3])]
        colour[r] = (size[i] * colour[i] + size[j] * colour[j]) / size[r]
        texture[r] = (size[i] * texture[i] + size[j] * texture[j]) / size[r]
        children[r] = (i, j)
        alive[i] = alive[j] = False
        alive[r] = True
        for k in sorted((neighbours[i] | neighbours[j]) - {i, j}):
            neighbours[k] -= {i, j}
            if alive[k]:
                neighbours[k].add(r)
                neighbours[r].add(k)
                heapq.heappush(heap, (-similarity(k, r), k, r))
    return bbox[:nxt], size[:nxt], children[:nxt]


def best_grouping_proposal(image, labels, box_mask):
    """
    The region of the superpixels' hierarchy (:func:`region_hierarchy`) with the highest IoU with the box (the
    first one in merge order on ties).

    Args:
        image (ndarray): (h, w, 3) uint8 image in the strategy's colour space.
        labels (ndarray): (h, w) int superpixel labels 0..n-1.
        box_mask (ndarray): (h, w) bool, the box.

    Returns:
        (ndarray[bool], float): (h, w) mask of the best region and its IoU with the box.
    """
    n = int(labels.max()) + 1
    _, size, children = region_hierarchy(image, labels)
    inside = np.zeros(len(size))
    inside[:n] = np.bincount(labels.ravel(), weights=box_mask.ravel().astype(np.float64), minlength=n)
    for r in range(n, len(size)):
        i, j = children[r]
        inside[r] = inside[i] + inside[j]
    iou = inside / (float(box_mask.sum()) + size - inside)
    best = int(np.argmax(iou))
    leaves, stack = [], [best]
    while stack:
        r = stack.pop()
        if children[r] is None:
            leaves.append(r)
        else:
            stack.extend(children[r])
    return np.isin(labels, leaves), float(iou[best])


def box_proposal(crop_bgr, box_mask, strategies=(("lab", 100), ("hsv", 100), ("rgb", 200)), sigma=0.8, min_size=20):
    """
    The proposal with the highest IoU with the box over several grouping strategies (WSPS §3.2 with MCG replaced).

    Args:
        crop_bgr (ndarray): (h, w, 3) uint8 BGR window around the box (:class:`~wsis.methods.wsps.crop.BoxWindow`).
        box_mask (ndarray): (h, w) bool, the box in the window.
        strategies: (colour space, Felzenszwalb scale k) pairs; each gives one hierarchy.
        sigma, min_size: Felzenszwalb's smoothing and minimum superpixel size (pixels of the window).

    Returns:
        (ndarray[bool], float): (h, w) proposal mask (may extend beyond the box) and its IoU with the box.
    """
    best, best_iou = None, -1.0
    for space, k in strategies:
        img = to_colour_space(crop_bgr, space)
        labels = felzenszwalb_superpixels(img, k, sigma, min_size)
        mask, v = best_grouping_proposal(img, labels, box_mask)
        if v > best_iou:
            best, best_iou = mask, v
    return best, best_iou
