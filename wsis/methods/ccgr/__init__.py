"""
CCGR (Center-context-gap Refinement, AAAI 2020): peaks of class response maps as instance bags (:mod:`.peaks`),
whole-image proposals (:mod:`.proposals`), bag files (:mod:`.bag_file`, :mod:`.bag_job`), WSDDN's loss over the
bags (:mod:`.losses`) and the centre-context-gap box refinement (:mod:`.refine`), all pure; the MIL branch as a
detectron2 ROI head (:mod:`.roi_heads`, :mod:`.mapper`, :mod:`.loaders`). The segmentation branch's training on
instance masks, the pseudo instance labels and the iterations with Mask R-CNN are to come (issue 15).
"""
