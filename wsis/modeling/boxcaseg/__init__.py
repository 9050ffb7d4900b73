"""
BoxCaseg (Wang et al., CVPR 2021): the crop-level, box-supervised class-agnostic segmentation network's heads
(detectron2-free). The losses are pure functions in :mod:`wsis.modeling.losses.boxcaseg`; the crops, the batch
sampler and the proxy-mask merge live in :mod:`wsis.data.boxcaseg_crops`, :mod:`wsis.data.samplers` and
:mod:`wsis.pseudo.proxy_masks`.
"""
from .heads import BoxCasegHeads, WeightTransfer, salient_probability, upsample_to

__all__ = ["BoxCasegHeads", "WeightTransfer", "salient_probability", "upsample_to"]
