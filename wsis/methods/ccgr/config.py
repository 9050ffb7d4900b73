"""Config keys of CCGR (``MODEL.CCGR``: bags, the MIL head and the refinement; ``WSIS.CCGR``: bag files)."""
from dataclasses import asdict

from wsis.core.config import defaults, set_defaults

from .refine import CCGRParams

__all__ = ["add_ccgr_config"]


def add_ccgr_config(cfg):
    """
    CCGR's MIL branch (``WSDDNBagROIHeads`` under detectron2's ``GeneralizedRCNN`` with
    ``MODEL.PROPOSAL_GENERATOR.NAME "PrecomputedProposals"``: the bags' proposals come with the images) and its
    box refinement (Eq. 2-3).
    """
    c = defaults(cfg, "MODEL", "CCGR")
    # Bags (Eq. 4): proposals per peak and the weight of their background mass.
    c.BAG_TOP_K = 10
    c.BAG_PENALTY = 0.1
    # The refinement (MODEL.CCGR.REFINE, wsis.methods.ccgr.refine.CCGRParams): gradient steps (Fig. 4-5: up to
    # 200), step size in units of each box's size, the context's scale, Φ(C) as the ring's mean ("ring") or the
    # paper's literal Φ(B̃) − Φ(B) ("paper"), the smallest box side, and BLUR: the coarse levels' Gaussian σ over
    # √(box area), which share the first half of the steps (wsis's; () is the paper's plain descent on the map).
    set_defaults(cfg, ("MODEL", "CCGR", "REFINE"), asdict(CCGRParams()))
    # "We stop the CCGR process if the refined bounding box contains more than one peak": a box never takes one more
    # of the peaks of the bag files (WSIS.CCGR.BAGS); bags made from boxes (later iterations) have none.
    c.STOP_AT_PEAKS = True
    w = defaults(cfg, "WSIS", "CCGR")
    # Bag files (tools/make_ccgr_bags.py; detectron2's proposal pickle + bag_index, bag_labels) of the training and
    # test images, by image id: the MIL branch trains on DATASETS.TRAIN's bags and gives one box per bag at test.
    w.BAGS = ()
    # The pseudo instance labels (tools/make_pseudo_masks.py --method ccgr, run with the segmentation branch's
    # config and weights): the MIL branch's boxes (tools/infer_train_set.py's predictions file, dataset category
    # ids) and the least score of a box used.
    w.BOXES = ""
    w.BOX_SCORE_THRESH = 0.0
