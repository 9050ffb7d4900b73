from .region_mask import ImageRegionMask

__all__ = ["ImageRegionMask"]
