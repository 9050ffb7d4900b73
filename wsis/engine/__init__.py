"""Detectron2 glue: the trainer and the registry of each method's loaders and evaluators. It imports no method:
``import wsis.modeling`` registers them."""
from .loaders import LOADERS_REGISTRY, WeakInstanceLoaders, get_loaders
from .trainer import WSISTrainer, build_evaluators

__all__ = ["WSISTrainer", "build_evaluators", "LOADERS_REGISTRY", "WeakInstanceLoaders", "get_loaders"]
