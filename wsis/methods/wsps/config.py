"""
Config keys of WSPS's pseudo-mask generators (``WSIS.PSEUDO.WSPS``, ``WSIS.PSEUDO.WSPS_ROUND``), the ``KEY VALUE``
overrides of ``tools/make_pseudo_masks.py --method wsps|wsps_round``, and the defaults the generators use.
"""
from wsis.core.config import defaults, set_defaults
from wsis.core.crf import DenseCRFParams

__all__ = ["add_wsps_config", "GRABCUT_DEFAULTS", "PROPOSAL_DEFAULTS", "BOX_CRF_DEFAULTS", "VOTE_DEFAULTS", "DEFAULT_LUT",
           "DEFAULT_LUT_ELLIPSE", "DEFAULT_PROPOSAL_STRATEGIES"]

#: P(foreground) per fusion state (BG, UNSURE, FG): in the box's corners, and inside its inscribed ellipse.
DEFAULT_LUT = (0.05, 0.5, 0.95)
DEFAULT_LUT_ELLIPSE = (0.05, 0.6, 0.95)
#: Selective-Search-style groupings: (colour space, Felzenszwalb k).
DEFAULT_PROPOSAL_STRATEGIES = (("lab", 100), ("hsv", 100), ("rgb", 200))
#: GrabCut per box (:func:`wsis.methods.wsps.grabcut.grabcut_box`).
GRABCUT_DEFAULTS = dict(iterations=5, init="core", core=0.4, margin=0.5, box_size=128)
#: Segment proposals per box (:func:`wsis.methods.wsps.proposals.box_proposal`).
PROPOSAL_DEFAULTS = dict(strategies=DEFAULT_PROPOSAL_STRATEGIES, sigma=0.8, min_size=20, margin=0.5, box_size=64)
#: DenseCRF of each box's window (:func:`wsis.methods.wsps.crf.crf_box_states`): DeepLab's kernels plus these.
BOX_CRF_DEFAULTS = dict(DenseCRFParams().to_dict(), lut=DEFAULT_LUT, lut_ellipse=DEFAULT_LUT_ELLIPSE, outside=0.1,
                        threshold=0.5, box_size=128)

#: ``refine="vote"`` (:mod:`wsis.methods.wsps.vote`): voting ellipse / box sides, the coverage at which GrabCut alone
#: is the claim (> 1: never), and the extra GrabCut runs ([core, box_size]) whose tightest is the box's estimate.
VOTE_DEFAULTS = dict(ellipse=1.0, tight=0.8, grabcut_runs=((0.25, 64), (0.6, 64)))


def add_wsps_config(cfg):
    """WSPS's box pseudo labels (§3.2, ``--method wsps``) and refinement rounds (§3.4, ``--method wsps_round``)."""
    w = defaults(cfg, "WSIS", "PSEUDO", "WSPS")
    # How GrabCut and the proposal become labels: "vote" (default; the box's inscribed ellipse casts a third vote,
    # the smallest claimant owns an overlap, the others ignore it), "none" (WSPS's iteration-0 fusion, with ignore
    # regions) or "crf" (that fusion, its ignored pixels filled by DenseCRF).
    w.REFINE = "vote"
    # "none" / "crf": foreground of boxes of different classes that overlap: "smallest" (the smallest box takes it)
    # or "ignore".
    w.CROSS_CLASS = "smallest"
    # OpenCV's RNG seed, set before every GrabCut call (results do not depend on worker order).
    w.SEED = 0
    # GRABCUT, PROPOSALS, CRF and VOTE: the parameters of each stage, upper-cased (GRABCUT_DEFAULTS,
    # PROPOSAL_DEFAULTS, BOX_CRF_DEFAULTS, VOTE_DEFAULTS of this module; CRF holds wsis.core.crf.DenseCRFParams'
    # fields and the box unary's; VOTE.GRABCUT_RUNS: [[core, box_size], ...]).
    set_defaults(cfg, ("WSIS", "PSEUDO", "WSPS", "GRABCUT"), GRABCUT_DEFAULTS)
    set_defaults(cfg, ("WSIS", "PSEUDO", "WSPS", "PROPOSALS"), PROPOSAL_DEFAULTS)
    set_defaults(cfg, ("WSIS", "PSEUDO", "WSPS", "CRF"), BOX_CRF_DEFAULTS)
    set_defaults(cfg, ("WSIS", "PSEUDO", "WSPS", "VOTE"), VOTE_DEFAULTS)

    r = defaults(cfg, "WSIS", "PSEUDO", "WSPS_ROUND")
    # The model's predictions on the training set: infer_train_set.py's instances_predictions.pth or a COCO results
    # json; or SEMANTIC_DIR, a folder of <image_id>.npz semantic probabilities ("probs", (K + 1, H, W)). One of them.
    r.PREDICTIONS = ""
    r.SEMANTIC_DIR = ""
    # Category ids of PREDICTIONS: "dataset" (results jsons, infer_train_set.py) or "contiguous" (COCOEvaluator's
    # instances_predictions.pth, saved before it maps ids back).
    r.CATEGORY_IDS = "dataset"
    # Thing pixels outside every box of their class: "ignore" or "background" (VOC-like data).
    r.OUTSIDE = "ignore"
    # Least IoU of a box with a predicted instance of its class for the box to keep that instance's shape.
    r.MATCH_IOU = 0.5
    # DenseCRF on the class probabilities before the clamp (False: none); CRF holds DenseCRFParams' fields.
    r.CRF_ENABLED = True
    set_defaults(cfg, ("WSIS", "PSEUDO", "WSPS_ROUND", "CRF"), DenseCRFParams().to_dict())
    return cfg
