"""
Config keys of wsis, added to a Detectron2 config by :func:`add_wsis_config` *before* ``merge_from_file``.

Each method family has its own ``add_*_config`` function; :func:`add_wsis_config` composes them. They only add keys
to the ``cfg`` they are given (a copy made by ``detectron2.config.get_cfg()``), never to Detectron2's global
default config, and work on any fvcore/yacs ``CfgNode`` (children take the class of ``cfg``), so this module does not
need detectron2. Each function can be called alone, in any order and more than once: it adds the keys that are
missing and never resets one that is already there (a second call keeps what the first call's user set).
"""


def _node(cfg, *path):
    """The child node ``cfg.<path>``, created where missing, of the class of ``cfg`` (so merging yaml works)."""
    node = cfg
    for name in path:
        if name not in node:
            node[name] = type(cfg)()
        node = node[name]
    return node


class _Defaults:
    """Attribute writes go to ``node`` only for keys it does not have yet."""

    def __init__(self, node):
        object.__setattr__(self, "_node", node)

    def __setattr__(self, key, value):
        if key not in self._node:
            self._node[key] = value


def _defaults(cfg, *path):
    return _Defaults(_node(cfg, *path))


def add_weak_data_config(cfg):
    """Weak annotations and pseudo masks fed to training."""
    d = _defaults(cfg, "WSIS", "DATA")
    # Pseudo-mask store files (wsis.data.pseudo_store format) merged into the training dicts: one file for all of
    # DATASETS.TRAIN, or one per DATASETS.TRAIN entry (same order). Empty: train on the annotations as registered.
    d.PSEUDO_MASKS = ()
    # Fail when an image of a training set has no record in its pseudo-mask file (else: its masks are invalid).
    d.PSEUDO_MASKS_REQUIRE_ALL = False
    # Keep the registered (real) masks of the training sets where they exist, pseudo masks for the other instances:
    # the semi-supervised setting, which sets it explicitly; the count of such instances is logged. False (weak
    # training): every mask comes from WSIS.DATA.PSEUDO_MASKS, registered ones never leak in.
    d.KEEP_GT_MASKS = False
    # The method's loaders and evaluators in WSISTrainer (a wsis.engine.LOADERS_REGISTRY name); "auto": the entry
    # that claims MODEL.META_ARCHITECTURE (BoxCaseg's crops for "BoxCaseg"), else "WeakInstanceLoaders".
    d.LOADERS = "auto"


def add_proxy_mask_head_config(cfg):
    """The valid-mask ("Proxy Mask R-CNN") mask head: `ProxyMaskRCNNConvUpsampleHead`."""
    d = _defaults(cfg, "MODEL", "ROI_MASK_HEAD")
    # Normalisation of the per-pixel BCE: "pixels" averages over valid, non-ignored pixels (Detectron2's mean
    # over all pixels when nothing is ignored); "instances" averages each valid instance first, then instances.
    d.LOSS_NORMALIZATION = "pixels"
    # A pixel counts as ignored for an instance when the ROI-aligned ignore region exceeds this value.
    d.IGNORE_THRESHOLD = 0.5


def add_box_supervision_config(cfg):
    """Box-supervised mask losses of `BoxSupervisedMaskRCNNConvUpsampleHead` (BBTP's MIL, or BoxInst's terms)."""
    bs = _defaults(cfg, "MODEL", "ROI_MASK_HEAD", "BOX_SUPERVISION")
    # Loss of instances without a valid mask: "mil" (BBTP: row/column bags + 8-neighbour smoothness) or "boxinst"
    # (BoxInst: max-projection Dice + colour-affinity pairwise term). Instances with a valid mask get Mask R-CNN's BCE.
    bs.LOSS = "mil"
    # Weight of the MIL bag term (BBTP Eq. 1, unary).
    bs.MIL_WEIGHT = 1.0
    # Positive bags take their max over the cells inside the box only (False: the whole row/column, as DESIGN.md's
    # official-code reading).
    bs.MIL_POSITIVE_WITHIN_BOX = False
    # Weight of BBTP's 8-neighbour smoothness Σ(p_i − p_j)² (Eq. 2); 0.05 in the paper and the official code.
    bs.MIL_PAIRWISE_WEIGHT = 0.05
    # Weight of BoxInst's projection term.
    bs.PROJECTION_WEIGHT = 1.0
    # Weight of BoxInst's colour-affinity pairwise term, its similarity threshold τ, kernel, dilation and linear
    # warm-up length in iterations (BoxInst: 1.0, 0.3, 3, 2, 10000).
    bs.COLOR_PAIRWISE_WEIGHT = 1.0
    bs.COLOR_THRESHOLD = 0.3
    bs.COLOR_KERNEL_SIZE = 3
    bs.COLOR_DILATION = 2
    bs.COLOR_WARMUP_ITERS = 10000


def add_mask_crf_config(cfg):
    """DenseCRF refinement of pasted instance masks at inference (meta-architecture `GeneralizedRCNNWithMaskCRF`)."""
    crf = _defaults(cfg, "MODEL", "MASK_CRF")
    # Refine each instance mask against the image after pasting (off: identical to GeneralizedRCNN).
    crf.ENABLED = False
    # Mean-field iterations and kernels; defaults are BBTP's official values (5 iterations, bilateral w 0.005 with
    # θα 60 / θβ 10, Gaussian w 0.05 with θγ 3) with its MATLAB wrapper's unnormalised kernels (NORMALIZATION
    # "none"; "symmetric" is pydensecrf's and DeepLab's, whose setting is 10, 4, 67, 3, 3, 1). projects/BBTP/README.md
    # has what each does on held-out data.
    crf.ITERATIONS = 5
    crf.BILATERAL_WEIGHT = 0.005
    crf.BILATERAL_XY_STD = 60.0
    crf.BILATERAL_RGB_STD = 10.0
    crf.GAUSSIAN_WEIGHT = 0.05
    crf.GAUSSIAN_XY_STD = 3.0
    crf.NORMALIZATION = "none"
    # Context around each box (fraction of its size) included in the CRF crop.
    crf.BOX_MARGIN = 0.2
    # Processes refining instances in parallel (0: in the calling process).
    crf.NUM_WORKERS = 0


def add_boxcaseg_config(cfg):
    """BoxCaseg (Wang et al., CVPR 2021): the crop-level joint network (meta-architecture `BoxCaseg`), its data and
    its proxy masks."""
    bc = _defaults(cfg, "MODEL", "BOXCASEG")
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

    bd = _defaults(cfg, "WSIS", "BOXCASEG")
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


def add_evaluation_config(cfg):
    """Evaluation of instance masks (AP^r and COCO AP)."""
    ev = _defaults(cfg, "WSIS", "EVAL")
    # IoU thresholds of the VOC/SDS-style AP^r; AP^r_vol (mean over 0.1..0.9) is always reported.
    ev.APR_IOU_THRESHOLDS = (0.25, 0.5, 0.7, 0.75)
    # Interpolation of the precision/recall curve: "voc" (VOC2010+ all points), "voc07" (11 points), "coco101".
    ev.APR_INTERPOLATION = "voc"
    # Also run Detectron2's COCOEvaluator (box and mask AP) on instance datasets.
    ev.COCO = True


def add_wsis_config(cfg):
    """Add every wsis key to ``cfg`` (in place) and return it."""
    add_weak_data_config(cfg)
    add_proxy_mask_head_config(cfg)
    add_box_supervision_config(cfg)
    add_mask_crf_config(cfg)
    add_boxcaseg_config(cfg)
    add_evaluation_config(cfg)
    return cfg
