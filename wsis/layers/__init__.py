"""Building blocks shared by several methods (detectron2-free)."""
from .dense_crf import BBTP_CRF, DenseCRFParams, dense_crf, refine_binary_mask
from .mask_crf import refine_instance_masks

__all__ = ["BBTP_CRF", "DenseCRFParams", "dense_crf", "refine_binary_mask", "refine_instance_masks"]
