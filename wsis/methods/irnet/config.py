"""Config keys of IRNet (``MODEL.IRNET``: the network and its training; ``WSIS.IRNET``: label synthesis)."""
from wsis.core.config import defaults

__all__ = ["add_irnet_config"]


def add_irnet_config(cfg):
    """
    IRNet (Ahn, Cho & Kwak, CVPR 2019): a boundary branch and a displacement branch on a frozen backbone, trained
    from the inter-pixel relations of confident CAM labels (the IR labels, ``WSIS.DATA.SEMANTIC_LABELS`` written by
    ``tools/make_semantic_labels.py``), then instance and semantic pseudo labels by a random walk from CAMs.
    """
    c = defaults(cfg, "MODEL", "IRNET")
    # The backbone levels both branches read (IRNet: all five; "stem" includes the max-pool, stride 4).
    c.IN_FEATURES = ["stem", "res2", "res3", "res4", "res5"]
    c.BOUNDARY_CHANNELS = 32
    c.DISPLACEMENT_CHANNELS = [64, 128, 256, 256, 256]  # one per IN_FEATURES entry (the official widths)
    c.MERGE_CHANNELS = 256
    # IRNet trains its branches on a frozen backbone (features detached, BatchNorm in eval mode); False fine-tunes it.
    c.FREEZE_BACKBONE = True
    # Pairs within TRAIN_RADIUS on the label grid (1/4 of the image) at training (§6.1: 10).
    c.TRAIN_RADIUS = 10.0
    c.IGNORE_VALUE = 255
    # Loss weights: the official train_irn.py halves both (the paper's Eq. 9 has 1, a uniform LR scale).
    c.BOUNDARY_LOSS_WEIGHT = 0.5
    c.DISPLACEMENT_LOSS_WEIGHT = 0.5
    # "gradients that the displacement branch receives are amplified by a factor of 10" (§6.1): its LR factor.
    c.DISPLACEMENT_LR_MULTIPLIER = 10.0
    # Inference: the boundary map averaged with that of the flipped image (official EdgeDisplacement).
    c.FLIP = True

    s = defaults(cfg, "WSIS", "IRNET")
    # Random walk (§5.2, §6.1): pairs within 5, β = 10, t = 256 steps (0: the ablation without the walk).
    s.WALK_RADIUS = 5.0
    s.BETA = 10.0
    s.WALK_STEPS = 256
    # Centroids (§5.1, A.1): Eq. 10 refinement steps (paper 100, official 300), candidates |D| < 2.5.
    s.CENTROID_STEPS = 100
    s.CENTROID_THRESHOLD = 2.5
    # Pixels whose centroid lands on no candidate: "own" (one more instance, the official code) or "none" (Eq. 15).
    s.UNASSIGNED = "own"
    # Background where the max-normalised walk score is below this (official ins/sem_seg_bg_thres 0.25).
    s.BG_THRESHOLD = 0.25
    # Instance fragments smaller than this fraction of the image are dropped (official: kept with score 0).
    s.MIN_FRAGMENT = 0.01
    # The cue store (tools/make_cues.py) the walk starts from; its stride must be the network's output stride.
    s.CUES = ""
    return cfg
