"""
Peaks of class response maps as instance bags (CCGR paper, "Iterative optimization and its initialization", after
PRM, Zhou et al. 2018) and the proposals of each bag, ranked by Eq. 4.

* A **peak** of a class is a local maximum of its map in a 3 × 3 window whose value is at least the map's median
  (PRM's rule). wsis adds two things: the value must be positive (cues after ReLU and max-normalisation are 0 on
  most of the image, where every pixel would be a "maximum"), and a flat top gives one peak, its first pixel in
  raster order (PRM counts each of its pixels: two tied pixels of one object would make two peaks, and no proposal
  would hold exactly one of them).
* A peak's **bag** holds the proposals that contain the peak and no other peak of its class, the 10 best by
  R(B) = B_S − 0.1 · Σ_B (1 − O) / |B|  (Eq. 4): B_S the proposal's objectness, O the foreground score map.
* Proposals without a learned objectness (the paper's MCG has one; Selective Search has none) can take B_S from O
  itself (:func:`contrast_objectness`, wsis's): the centre-context gap of Eq. 3 on O, high for a box that holds
  foreground and whose context ring does not. With B_S = 0, Eq. 4 alone ranks first the boxes with no background
  pixel, which are the parts inside an object.

Pure PyTorch; maps and boxes in image pixels (a map at stride s has its peaks at ((x + 0.5) s, (y + 0.5) s)).
"""
import torch
import torch.nn.functional as F

from .refine import box_sums, ccgr_loss, integral_image, points_in_boxes

__all__ = ["find_peaks", "peak_bags", "image_bags", "contrast_objectness"]


def find_peaks(maps, classes, stride=1.0, min_peak=0.0):
    """
    Args:
        maps (Tensor): (M, h, w) response maps of an image's tagged classes. classes (sequence[int]): (M,) classes.
        stride (float): image pixels per map pixel.
        min_peak (float): a peak must also reach this fraction of its map's maximum (wsis's; 0: PRM's rule alone).

    Returns:
        (Tensor, Tensor, Tensor): (K, 2) peak positions x, y in image pixels (cell centres), (K,) long classes,
        (K,) the maps' values there; ordered by class, then row-major.
    """
    maps = torch.as_tensor(maps, dtype=torch.float32)
    if maps.dim() != 3 or len(maps) != len(classes):
        raise ValueError(f"maps (M, h, w) {tuple(maps.shape)} for {len(classes)} classes")
    if not torch.isfinite(maps).all():
        raise ValueError("response maps hold NaN or inf")
    if len(maps) == 0:
        return maps.new_zeros((0, 2)), torch.zeros(0, dtype=torch.long), maps.new_zeros(0)
    padded = F.pad(maps, (1, 1, 1, 1), value=float("-inf"))
    h, w = maps.shape[-2:]
    pooled = F.max_pool2d(padded[None], 3, stride=1)[0]
    earlier = torch.stack([padded[:, 0:h, 0:w], padded[:, 0:h, 1:w + 1], padded[:, 0:h, 2:w + 2],
                           padded[:, 1:h + 1, 0:w]]).amax(0)  # the neighbours before a pixel in raster order
    median = maps.flatten(1).median(dim=1).values.view(-1, 1, 1)
    top = maps.flatten(1).amax(1).view(-1, 1, 1)
    keep = (maps == pooled) & (maps > earlier) & (maps >= median) & (maps > 0) & (maps >= min_peak * top)
    m, y, x = keep.nonzero(as_tuple=True)
    xy = torch.stack([(x.float() + 0.5) * stride, (y.float() + 0.5) * stride], 1)
    return xy, torch.as_tensor(list(classes), dtype=torch.long)[m], maps[m, y, x]


def contrast_objectness(foreground, boxes, context_scale=1.5):
    """
    B_S of Eq. 4 from the foreground map (wsis's, for proposals without a learned objectness): Φ_O(B) − Φ_O(C), the
    negated L_CCGR of Eq. 3 on O, context C the box ``context_scale`` × as wide and high minus the box (clipped to
    the image). 1 for a box that fits a foreground region on background; 0 for a part inside a region or a box on
    background; negative for a box in a hole.

    Args:
        foreground (Tensor): (H, W) O in [0, 1]. boxes (Tensor): (P, 4) x1, y1, x2, y2 in pixels of O.

    Returns:
        Tensor: (P,) in [−1, 1].
    """
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    integral = integral_image(torch.as_tensor(foreground, dtype=torch.float32))
    return -ccgr_loss(integral.expand(len(boxes), *integral.shape), boxes, context_scale)


def peak_bags(peaks_xy, peak_classes, boxes, objectness, foreground, top_k=10, penalty=0.1):
    """
    Args:
        peaks_xy (Tensor): (K, 2) peaks in image pixels. peak_classes (Tensor): (K,).
        boxes (Tensor): (P, 4) proposals x1, y1, x2, y2 in image pixels. objectness (Tensor): (P,) B_S.
        foreground (Tensor): (H, W) O of Eq. 4 at image resolution, in [0, 1].
        top_k (int): proposals kept per bag (10). penalty (float): the background weight of Eq. 4 (0.1).

    Returns:
        list[Tensor]: K long tensors, the proposals of each peak's bag by decreasing R (empty when none qualifies).
    """
    peaks_xy = torch.as_tensor(peaks_xy, dtype=torch.float32).reshape(-1, 2)
    peak_classes = torch.as_tensor(peak_classes, dtype=torch.long).reshape(-1)
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    objectness = torch.as_tensor(objectness, dtype=torch.float32).reshape(-1)
    if len(boxes) != len(objectness) or len(peaks_xy) != len(peak_classes):
        raise ValueError(f"{len(boxes)} proposals for {len(objectness)} scores, {len(peaks_xy)} peaks for "
                         f"{len(peak_classes)} classes")
    if len(boxes) == 0 or len(peaks_xy) == 0:
        return [torch.zeros(0, dtype=torch.long) for _ in range(len(peaks_xy))]
    integral = integral_image(1.0 - torch.as_tensor(foreground, dtype=torch.float32))
    background, area = box_sums(integral.expand(len(boxes), *integral.shape), boxes)
    rank = objectness - penalty * background / area.clamp_min(1e-6)
    inside = points_in_boxes(boxes, peaks_xy[None])  # (P, K)
    same = peak_classes.view(1, -1) == peak_classes.view(-1, 1)  # (K, K)
    count = inside.float() @ same.float()  # (P, K): the peaks of k's class that proposal p contains
    bags = []
    for k in range(len(peaks_xy)):
        members = torch.nonzero(inside[:, k] & (count[:, k] == 1)).flatten()
        order = rank[members].argsort(descending=True, stable=True)
        bags.append(members[order[:top_k]])
    return bags


def image_bags(maps, classes, stride, boxes, objectness, foreground, top_k=10, penalty=0.1, min_peak=0.0):
    """
    One image's MIL bags, concatenated: the peaks of its tagged classes' maps (:func:`find_peaks`, ``min_peak``)
    and the bag of each (:func:`peak_bags`); peaks whose bag is empty are left out.

    Returns:
        dict: ``boxes`` (N, 4) and ``objectness`` (N,) of the bags' proposals in bag order (a proposal in two bags
        appears twice), ``bag_index`` (N,) long, ``bag_labels`` (B,) long classes, ``peaks`` (B, 2) x, y.
    """
    xy, peak_classes, _ = find_peaks(maps, classes, stride, min_peak)
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    objectness = torch.as_tensor(objectness, dtype=torch.float32).reshape(-1)
    bags = peak_bags(xy, peak_classes, boxes, objectness, foreground, top_k, penalty)
    keep = [k for k, b in enumerate(bags) if len(b)]
    members = torch.cat([bags[k] for k in keep]) if keep else torch.zeros(0, dtype=torch.long)
    return {"boxes": boxes[members], "objectness": objectness[members],
            "bag_index": torch.cat([torch.full((len(bags[k]),), i, dtype=torch.long) for i, k in enumerate(keep)])
            if keep else torch.zeros(0, dtype=torch.long),
            "bag_labels": peak_classes[keep], "peaks": xy[keep]}
