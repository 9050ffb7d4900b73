"""Detectron2 glue: the trainer. Importing it registers every wsis model part and builtin dataset."""
from .trainer import WSISTrainer, build_evaluators

__all__ = ["WSISTrainer", "build_evaluators"]
