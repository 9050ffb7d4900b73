from .boxcaseg import BoxCaseg
from .rcnn_mask_crf import GeneralizedRCNNWithMaskCRF

__all__ = ["BoxCaseg", "GeneralizedRCNNWithMaskCRF"]
