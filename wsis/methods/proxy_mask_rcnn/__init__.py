"""
Proxy Mask R-CNN (BoxCaseg §3.3; the training stage of every pseudo-mask method): Mask R-CNN whose mask loss skips
invalid masks and ignored pixels. Pure: :mod:`.losses`, :mod:`.config`. Glue: :mod:`.roi_heads`
(``ProxyMaskRCNNConvUpsampleHead``).
"""
