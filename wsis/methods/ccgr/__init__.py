"""
CCGR (Center-context-gap Refinement, AAAI 2020). Pure: peaks of class response maps as instance bags
(:mod:`.peaks`), bags from the instance branch's boxes (:mod:`.box_bags`), whole-image proposals (:mod:`.proposals`),
bag and proposal files (:mod:`.bag_file`, :mod:`.bag_job`), WSDDN's loss over the bags (:mod:`.losses`), the
centre-context-gap box refinement (:mod:`.refine`), the pseudo instance labels of refined boxes and the segmentation
labels from instance masks (:mod:`.instances`, :mod:`.labels`, :mod:`.label_job`). Glue: the MIL branch as a
detectron2 ROI head (:mod:`.roi_heads`, :mod:`.mapper`, :mod:`.loaders`); the ``ccgr`` pseudo-mask generator
(:mod:`.generator`, which runs the segmentation branch). One iteration end to end: ``tools/ccgr_iteration.py``.
"""
