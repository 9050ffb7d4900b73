"""
Models. ``import wsis.modeling`` registers every wsis head and meta-architecture with Detectron2's registries.

The pure parts (:mod:`wsis.modeling.losses`) import without detectron2; when detectron2 is not installed, the glue
is not imported and asking for one of its names raises an ImportError that says so.
"""
import importlib.util

_GLUE = ("ProxyMaskRCNNConvUpsampleHead", "BoxSupervisedMaskRCNNConvUpsampleHead", "GeneralizedRCNNWithMaskCRF", "BoxCaseg")


def _has_detectron2():
    try:
        return importlib.util.find_spec("detectron2") is not None
    except (ImportError, ValueError):  # an import hook refused it, or a None entry in sys.modules
        return False


if _has_detectron2():
    from .meta_arch import BoxCaseg, GeneralizedRCNNWithMaskCRF  # noqa: F401  (registers by import)
    from .roi_heads import BoxSupervisedMaskRCNNConvUpsampleHead, ProxyMaskRCNNConvUpsampleHead  # noqa: F401
else:

    def __getattr__(name):
        if name in _GLUE:
            raise ImportError(f"wsis.modeling.{name} needs detectron2; see README.md for the install command")
        raise AttributeError(f"module 'wsis.modeling' has no attribute {name!r}")


__all__ = list(_GLUE)
