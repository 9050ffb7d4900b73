"""
BBTP (Hsu et al., NeurIPS 2019): Mask R-CNN whose mask head learns from boxes by multiple-instance learning, with
DenseCRF refinement at inference. Pure: :mod:`.losses` (MIL bags, pairwise terms, BoxInst's alternative),
:mod:`.mask_crf`, :mod:`.config`. Glue: :mod:`.roi_heads` (``BoxSupervisedMaskRCNNConvUpsampleHead``),
:mod:`.meta_arch` (``GeneralizedRCNNWithMaskCRF``).
"""
