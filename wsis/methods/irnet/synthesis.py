"""
IRNet's label synthesis for one image (§5; the official ``step/make_ins_seg_labels.py`` and
``make_sem_seg_labels.py`` in one pass): CAMs + the network's boundary map and displacement field → instance pseudo
masks with scores, and a semantic pseudo-label map, from one random walk over the class CAMs and the instance-wise
CAMs together (they share the transition matrix). Also the two baselines of the benchmark.

Shapes: C tagged classes, (h, w) the grid (stride s, IRNet: 4), (H, W) the image.
"""
from dataclasses import asdict, dataclass
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F

from wsis.methods.cam.localization import upsample_cams

from .instances import (
    instance_cams,
    instance_map,
    instances_from_scores,
    scored_fragments,
    semantic_from_scores,
)
from .walk import random_walk

__all__ = ["SynthesisSettings", "synthesize", "cam_components"]


@dataclass(frozen=True)
class SynthesisSettings:
    """``WSIS.IRNET`` (config.py says what each does)."""
    walk_radius: float = 5.0
    beta: float = 10.0
    walk_steps: int = 256
    centroid_steps: int = 100
    centroid_threshold: float = 2.5
    unassigned: str = "own"
    bg_threshold: float = 0.25
    min_fragment: float = 0.01

    @classmethod
    def from_config(cls, cfg):
        s = cfg.WSIS.IRNET
        return cls(float(s.WALK_RADIUS), float(s.BETA), int(s.WALK_STEPS), int(s.CENTROID_STEPS),
                   float(s.CENTROID_THRESHOLD), str(s.UNASSIGNED), float(s.BG_THRESHOLD), float(s.MIN_FRAGMENT))

    def to_dict(self):
        return asdict(self)


def _to_grid(x, size):
    """A network output (..., h', w') resized to the cue grid (h, w) when they differ (bilinear)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    lead = x.shape[:-2]
    y = F.interpolate(x.reshape(1, -1, *x.shape[-2:]).float(), size=tuple(size), mode="bilinear", align_corners=False)
    return y.reshape(*lead, *size)


def synthesize(cams, classes: Sequence[int], boundary, displacement, stride: int, height: int, width: int,
               settings: SynthesisSettings = SynthesisSettings()) -> Dict:
    """
    Args:
        cams (Tensor): (C, h, w) the image's CAMs of its tagged classes (cue store, stride ``stride``).
        classes: the C contiguous classes. boundary (Tensor): (h', w') B. displacement (Tensor): (2, h', w') D;
            both resized to (h, w) if the network's grid differs from the cue grid by rounding.
    Returns:
        dict: ``instances`` (list of ``{"category_id", "mask" (H, W) bool, "score"}``, by descending score),
        ``semantic`` ((H, W) uint8: 0 background, class + 1) and ``num_instances`` (I of the instance map).
    """
    if cams.dim() != 3 or cams.shape[0] != len(classes):
        raise ValueError(f"cams must be (C, h, w) with one map per class, got {tuple(cams.shape)} for {list(classes)}")
    size = cams.shape[-2:]
    boundary, displacement = _to_grid(boundary.float(), size), _to_grid(displacement.float(), size)
    c = len(classes)
    inst = instance_map(displacement, settings.centroid_steps, settings.centroid_threshold, settings.unassigned)
    num = int(inst.max()) + 1 if inst.numel() else 0
    maps = torch.cat([cams.float(), instance_cams(cams.float(), inst)])  # (C + C·I, h, w)
    # the walk is linear: an all-zero map (a class with no CAM inside an instance) stays zero, so only the others walk
    live = maps.flatten(1).abs().amax(1) > 0
    walked = torch.zeros_like(maps)
    if live.any():
        walked[live] = random_walk(maps[live], boundary, settings.walk_radius, settings.beta, settings.walk_steps)
    up = upsample_cams(walked, height, width, stride)
    return {"semantic": semantic_from_scores(up[:c], classes, settings.bg_threshold),
            "instances": instances_from_scores(up[c:], classes, num, settings.bg_threshold, settings.min_fragment),
            "num_instances": num}


def cam_components(cams, classes: Sequence[int], stride: int, height: int, width: int, threshold: float,
                   min_fragment: float = 0.01) -> List[Dict]:
    """
    The "CAM" row of IRNet's Table 1: CAMs upsampled, each pixel labelled with its best class where that class's
    CAM exceeds ``threshold`` (else background), and each class's 4-connected components taken as instances
    (assuming touching instances do not occur), scored by their maximum CAM.
    """
    up = upsample_cams(cams.float(), height, width, stride).cpu().numpy()
    if up.shape[0] == 0:
        return []
    best, peak = up.argmax(0), up.max(0)
    regions = (((best == n) & (peak > threshold), up[n], cls) for n, cls in enumerate(classes))
    return scored_fragments(regions, min_fragment * height * width)
