"""
``import wsis.modeling`` registers every wsis head, meta-architecture and trainer entry with Detectron2's registries
(``ROI_MASK_HEAD_REGISTRY``, ``META_ARCH_REGISTRY``, ``SEM_SEG_HEADS_REGISTRY``, ``WSIS_LOADERS``) and the builtin datasets. ``tools/train_net.py``
imports it; so does any project that builds wsis models from a config.

Without detectron2 nothing is imported, and asking for one of the names below raises an ImportError that says so.
"""
import importlib

import wsis.checkpoint  # noqa: F401  (registers the wsis:// checkpoint paths)
from wsis.core import has_detectron2

_GLUE = {
    "ProxyMaskRCNNConvUpsampleHead": "wsis.methods.proxy_mask_rcnn.roi_heads",
    "BoxSupervisedMaskRCNNConvUpsampleHead": "wsis.methods.bbtp.roi_heads",
    "GeneralizedRCNNWithMaskCRF": "wsis.methods.bbtp.meta_arch",
    "BoxCaseg": "wsis.methods.boxcaseg.meta_arch",
    "BoxCasegCropLoaders": "wsis.methods.boxcaseg.loaders",
    "CAMClassifier": "wsis.methods.cam.meta_arch",
    "CAMTagLoaders": "wsis.methods.cam.loaders",
    "IgnoreAwareSemSegFPNHead": "wsis.methods.cam.sem_seg_head",
    "IRNet": "wsis.methods.irnet.meta_arch",
    "DSRGHead": "wsis.methods.dsrg.head",
    "DSRGSemanticSegmentor": "wsis.methods.dsrg.meta_arch",
    "PSPSemSegHead": "wsis.methods.panoptic.psp_head",
    "WSPSPanopticNetwork": "wsis.methods.panoptic.meta_arch",
    "WSPSPanopticLoaders": "wsis.methods.panoptic.loaders",
    "WSDDNBagROIHeads": "wsis.methods.ccgr.roi_heads",
    "CCGRBagLoaders": "wsis.methods.ccgr.loaders",
}
__all__ = list(_GLUE)


if has_detectron2():
    import wsis.data.datasets  # noqa: F401  (registers builtin datasets)

    for _name, _module in _GLUE.items():
        globals()[_name] = getattr(importlib.import_module(_module), _name)
else:

    def __getattr__(name):
        if name in _GLUE:
            raise ImportError(f"wsis.modeling.{name} needs detectron2; see README.md for the install command")
        raise AttributeError(f"module 'wsis.modeling' has no attribute {name!r}")
