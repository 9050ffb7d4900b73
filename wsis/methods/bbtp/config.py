"""Config keys of BBTP: the box-supervised mask head (``MODEL.ROI_MASK_HEAD.BOX_SUPERVISION``) and DenseCRF at
inference (``MODEL.MASK_CRF``)."""
from wsis.core.config import defaults

__all__ = ["add_bbtp_config", "add_box_supervision_config", "add_mask_crf_config"]


def add_box_supervision_config(cfg):
    """Box-supervised mask losses of `BoxSupervisedMaskRCNNConvUpsampleHead` (BBTP's MIL, or BoxInst's terms)."""
    bs = defaults(cfg, "MODEL", "ROI_MASK_HEAD", "BOX_SUPERVISION")
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
    crf = defaults(cfg, "MODEL", "MASK_CRF")
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


def add_bbtp_config(cfg):
    """Every BBTP key: :func:`add_box_supervision_config` and :func:`add_mask_crf_config`."""
    add_box_supervision_config(cfg)
    add_mask_crf_config(cfg)
    return cfg
