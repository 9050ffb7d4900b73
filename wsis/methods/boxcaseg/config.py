"""Config keys of BoxCaseg (``MODEL.BOXCASEG``, ``WSIS.BOXCASEG``)."""
from wsis.core.config import defaults

__all__ = ['add_boxcaseg_config']


def add_boxcaseg_config(cfg):
    """BoxCaseg (Wang et al., CVPR 2021): the crop-level joint network (meta-architecture `BoxCaseg`), its data and
    its proxy masks."""
    bc = defaults(cfg, "MODEL", "BOXCASEG")
    # Backbone features fused at the resolution of the first one: each is upsampled, they are concatenated (HRNetV2's
    # segmentation head; any registered backbone works, HRNet included).
    bc.IN_FEATURES = ["p2", "p3", "p4", "p5"]
    # Channels of the 1x1 conv + norm + ReLU that mixes the concatenation before the heads (the paper variant);
    # 0: none, the heads read the concatenation (the official code, whose two-layer heads start with that conv).
    # NORM: of that conv and of two-layer heads ("GN", "BN", "SyncBN", "").
    bc.FUSE_DIM = 256
    bc.NORM = "GN"
    # Layers of each head: 1 (Fig. 4: a 1x1 conv) or 2 (official: conv1x1 -> norm -> ReLU -> conv1x1, both convs
    # transferred by their own MLP).
    bc.HEAD_LAYERS = 1
    # Bias of the transferred convs: "own" (a learnable bias) or "affine" (k·b + b0 of the weak conv's detached
    # bias, k = 1, b0 = 0 at start; official).
    bc.TRANSFER_BIAS = "own"
    # Mixing of Eq. 3: "prob" (α·σ(salient) + (1 − α)·σ(transferred), the paper) or "logit" (σ of α·salient +
    # (1 − α)·transferred logits, BCE-with-logits; official).
    bc.MIX = "prob"
    # α of Eq. 3; 0.7 on PASCAL, 0.6 on COCO (Tab. 6).
    bc.ALPHA = 0.7
    # Weight of the 8-neighbour smoothness term of the MIL loss (Eq. 1; 0.05 in the paper).
    bc.PAIRWISE_WEIGHT = 0.05
    # Weight of the pixel loss on salient samples (λ of Eq. 4 for them; 1 in the paper).
    bc.PIXEL_WEIGHT = 1.0
    # Heads trained: "weak" (MIL only), "weak+salient" (α forced to 1), "all" (weak + salient + transferred; Tab. 4).
    bc.HEADS = "all"

    bd = defaults(cfg, "WSIS", "BOXCASEG")
    # Salient-object datasets (e.g. "ecssd_train", a DUTS-Single registration) mixed into every batch with the box
    # samples of DATASETS.TRAIN (one crop per non-crowd box).
    bd.SALIENT_DATASETS = ()
    # Box : salient samples per batch (r_ws of Tab. 5; 9:7 with 16 crops per batch). SOLVER.IMS_PER_BATCH counts crops.
    bd.RATIO = (9, 7)
    # Side of the training crops; salient images are first resized to SALIENT_RESIZE (square), then randomly cropped.
    bd.CROP_SIZE = 288
    bd.SALIENT_RESIZE = 320
    # Box augmentation (§3.2.2): the centre moves by U(−j, j)·(width, height), each side is scaled by U(SCALE_RANGE).
    bd.CENTER_JITTER = 0.25
    bd.SCALE_RANGE = (0.5, 1.5)
    # The official COCO trick: a box whose IoU with another box of its image exceeds OVERLAP_IOU is left out of the
    # training crops with probability OVERLAP_DROP_PROB (drawn once, with DATALOADER's seed; 0 disables it).
    bd.OVERLAP_IOU = 0.5
    bd.OVERLAP_DROP_PROB = 0.0
    # Proxy masks (§3.4): each box is cropped exactly and resized to PROXY_CROP_SIZE, the fused salient output is
    # min-max normalised and thresholded at PROXY_THRESHOLD, pasted back, merged "smaller object better" (MERGE) and
    # dropped (stored invalid: box and class still train) when IoU(tight box of the mask, box) <= DROP_THRESHOLD.
    bd.PROXY_CROP_SIZE = 320
    bd.PROXY_THRESHOLD = 0.5
    bd.MERGE = True
    bd.DROP_THRESHOLD = 0.95
    # Binarisation thresholds the proxy-mask evaluator also scores (sweep/<t>/*, best_threshold), e.g.
    # (0.1, 0.2, 0.3, 0.4, 0.5) on the salient training set to choose PROXY_THRESHOLD for one's own model; () is off.
    bd.EVAL_THRESHOLDS = ()
