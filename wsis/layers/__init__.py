"""Building blocks shared by several methods (detectron2-free)."""
from .dense_crf import DenseCRFParams, dense_crf, refine_binary_mask

__all__ = ["DenseCRFParams", "dense_crf", "refine_binary_mask"]
