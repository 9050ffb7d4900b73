"""Config keys of DSRG (``MODEL.DSRG``: the head, its growing and losses; ``WSIS.DSRG.SEEDS``: seeds from cues)."""
from wsis.core.config import defaults

__all__ = ["add_dsrg_config"]


def add_dsrg_config(cfg):
    """
    ``DSRGHead`` (a ``SEM_SEG_HEADS_REGISTRY`` head: DeepLab-ASPP on ``MODEL.SEM_SEG_HEAD.IN_FEATURES[0]``, classes
    ``MODEL.SEM_SEG_HEAD.NUM_CLASSES`` with background first) trained on seed maps that grow (§3.3), with the
    balanced seeding loss (Eq. 1) and the constrain loss (Eq. 2); the seeds of ``tools/make_semantic_labels.py``.
    """
    c = defaults(cfg, "MODEL", "DSRG")
    # DeepLab-ASPP (v2, DSRG's segmentation network): one branch per dilation (3×3 dilated conv, two 1×1 convs,
    # ReLU + dropout between), their class scores summed.
    c.ASPP_DILATIONS = (6, 12, 18, 24)
    c.ASPP_CHANNELS = 1024
    c.DROPOUT = 0.5
    # Targets: "seeds" (balanced seeding loss on seeds that grow, §3.2-3.3) or "labels" (the retraining stage:
    # cross-entropy on dense labels with ignore, e.g. a trained head's final labels).
    c.TARGETS = "seeds"
    # Growing: "official" (8-connected components touching a seed, the authors' layer), "bfs" (the paper's
    # breadth-first visit) or "none" (fixed seeds: the paper's ablation); θ_f and θ_b of Eq. 3.
    c.GROWING = "official"
    c.FG_THRESHOLD = 0.85
    c.BG_THRESHOLD = 0.99
    # Grow on the CRF-refined probabilities (the official layer) or on the softmax itself.
    c.GROW_ON_CRF = True
    # Weight of the constrain (boundary) loss; 0 switches it and its CRF off.
    c.CONSTRAIN_WEIGHT = 1.0
    c.RATIO_CLIP = (0.05, 20.0)

    r = defaults(cfg, "MODEL", "DSRG", "CRF")
    # The training CRF (wsis.core.meanfield, on the device): SEC's kernels, unary −p ("prob", SEC/DSRG) or −log p.
    # Widths in image pixels: the official θγ 3 and θα 80 divided by its scale factor 12, in cells of the 41 × 41 map
    # of a 321 px crop (7.8 px each).
    r.ITERATIONS = 10
    r.WINDOW = 11
    r.GAUSSIAN_WEIGHT = 3.0
    r.GAUSSIAN_XY_STD = 2.0
    r.BILATERAL_WEIGHT = 10.0
    r.BILATERAL_XY_STD = 52.0
    r.BILATERAL_RGB_STD = 13.0
    r.UNARY = "prob"
    # "symmetric": each kernel normalised as densecrf (so pydensecrf and SEC's CRF) does by default; "none": the
    # kernels as Krähenbühl & Koltun's paper writes them (messages grow with the window).
    r.NORMALIZATION = "symmetric"

    s = defaults(cfg, "WSIS", "DSRG", "SEEDS")
    # Foreground: each tagged class's pixels ≥ FG_THRESHOLD × its CAM max (the CAM paper's 20 %). Background:
    # "saliency" (SALIENCY_DIR/<image_id>.png below SALIENCY_THRESHOLD, the paper's 0.06) or "low_cam" (every
    # class below BG_THRESHOLD × its max). Claimed twice → unlabelled.
    s.FG_THRESHOLD = 0.2
    s.BACKGROUND = "low_cam"
    s.BG_THRESHOLD = 0.05
    s.SALIENCY_DIR = ""
    s.SALIENCY_THRESHOLD = 0.06
    return cfg
