from .rcnn_mask_crf import GeneralizedRCNNWithMaskCRF

__all__ = ["GeneralizedRCNNWithMaskCRF"]
