from .proxy_mask_head import ProxyMaskRCNNConvUpsampleHead

__all__ = ["ProxyMaskRCNNConvUpsampleHead"]
