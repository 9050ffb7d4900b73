"""
Config keys of wsis, added to a Detectron2 config by :func:`add_wsis_config` *before* ``merge_from_file``.

Each method family has its own ``add_*_config`` function; :func:`add_wsis_config` composes them. They only add keys
to the ``cfg`` they are given (a copy made by ``detectron2.config.get_cfg()``), never to Detectron2's global
default config, and work on any fvcore/yacs ``CfgNode`` (children take the class of ``cfg``), so this module does not need detectron2.
"""


def _node(cfg):
    """A new child node of the same class as ``cfg`` (detectron2's CfgNode or fvcore's), so merging yaml works."""
    return type(cfg)()


def add_weak_data_config(cfg):
    """Weak annotations and pseudo masks fed to training."""
    cfg.WSIS = _node(cfg)
    cfg.WSIS.DATA = _node(cfg)
    # Pseudo-mask store files (wsis.data.pseudo_store format) merged into the training dicts: one file for all of
    # DATASETS.TRAIN, or one per DATASETS.TRAIN entry (same order). Empty: train on the annotations as registered.
    cfg.WSIS.DATA.PSEUDO_MASKS = ()
    # Fail when an image of a training set has no record in its pseudo-mask file (else: its masks are invalid).
    cfg.WSIS.DATA.PSEUDO_MASKS_REQUIRE_ALL = False
    # Keep real masks of instances that the pseudo-mask file does not cover (mixed supervision).
    cfg.WSIS.DATA.KEEP_GT_MASKS = True


def add_proxy_mask_head_config(cfg):
    """The valid-mask ("Proxy Mask R-CNN") mask head: `ProxyMaskRCNNConvUpsampleHead`."""
    # Normalisation of the per-pixel BCE: "pixels" averages over valid, non-ignored pixels (Detectron2's mean
    # over all pixels when nothing is ignored); "instances" averages each valid instance first, then instances.
    cfg.MODEL.ROI_MASK_HEAD.LOSS_NORMALIZATION = "pixels"
    # A pixel counts as ignored for an instance when the ROI-aligned ignore region exceeds this value.
    cfg.MODEL.ROI_MASK_HEAD.IGNORE_THRESHOLD = 0.5


def add_evaluation_config(cfg):
    """Evaluation of instance masks (AP^r and COCO AP)."""
    cfg.WSIS.EVAL = _node(cfg)
    # IoU thresholds of the VOC/SDS-style AP^r; AP^r_vol (mean over 0.1..0.9) is always reported.
    cfg.WSIS.EVAL.APR_IOU_THRESHOLDS = (0.25, 0.5, 0.7, 0.75)
    # Interpolation of the precision/recall curve: "voc" (VOC2010+ all points), "voc07" (11 points), "coco101".
    cfg.WSIS.EVAL.APR_INTERPOLATION = "voc"
    # Also run Detectron2's COCOEvaluator (box and mask AP) on instance datasets.
    cfg.WSIS.EVAL.COCO = True


def add_wsis_config(cfg):
    """Add every wsis key to ``cfg`` (in place) and return it."""
    add_weak_data_config(cfg)
    add_proxy_mask_head_config(cfg)
    add_evaluation_config(cfg)
    return cfg
