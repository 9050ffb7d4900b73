"""
BoxCaseg (Wang et al., CVPR 2021): a crop-level network trained on box crops and salient images, whose proxy masks
train a Proxy Mask R-CNN. Pure: :mod:`.losses`, :mod:`.heads`, :mod:`.crops`, :mod:`.samples`, :mod:`.sampler`,
:mod:`.proxy_masks`, :mod:`.saliency` (salient-object maps for DSRG's seeds), :mod:`.config`, :mod:`.generator` and
:mod:`.saliency_job` (detectron2 only when they run). Glue: :mod:`.meta_arch` (``BoxCaseg``), :mod:`.mapper`,
:mod:`.loaders` (its ``WSIS_LOADERS`` entry), :mod:`.evaluator`.
"""
