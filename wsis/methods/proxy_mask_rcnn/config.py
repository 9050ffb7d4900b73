"""Config keys of the valid-mask ("Proxy Mask R-CNN") mask head."""
from wsis.core.config import defaults

__all__ = ['add_proxy_mask_head_config']


def add_proxy_mask_head_config(cfg):
    """The valid-mask ("Proxy Mask R-CNN") mask head: `ProxyMaskRCNNConvUpsampleHead`."""
    d = defaults(cfg, "MODEL", "ROI_MASK_HEAD")
    # Normalisation of the per-pixel BCE: "pixels" averages over valid, non-ignored pixels (Detectron2's mean
    # over all pixels when nothing is ignored); "instances" averages each valid instance first, then instances.
    d.LOSS_NORMALIZATION = "pixels"
    # A pixel counts as ignored for an instance when the ROI-aligned ignore region exceeds this value.
    d.IGNORE_THRESHOLD = 0.5
