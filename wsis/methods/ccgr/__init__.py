"""
CCGR (Zhang et al., AAAI 2020): peaks of class response maps as instance bags (:mod:`.peaks`), WSDDN's loss over the
bags (:mod:`.losses`) and the centre-context-gap box refinement (:mod:`.refine`). Pure PyTorch; the MIL head, the
segmentation branch and the iterations with Mask R-CNN are to come (issue 15).
"""
