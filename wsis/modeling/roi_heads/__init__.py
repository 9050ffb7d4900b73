from .box_supervised_mask_head import BoxSupervisedMaskRCNNConvUpsampleHead
from .proxy_mask_head import ProxyMaskRCNNConvUpsampleHead

__all__ = ["ProxyMaskRCNNConvUpsampleHead", "BoxSupervisedMaskRCNNConvUpsampleHead"]
