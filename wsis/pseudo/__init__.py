"""
Pseudo-mask generation (detectron2-free): the generator registry (:mod:`.registry`), the resumable, sharded runner
(:func:`run_generator`), the box-fill baseline and the job every generation command runs (:mod:`.job`).

A generator is a picklable callable ``generator(dataset_dict) -> image record`` (the record format of
:mod:`wsis.data.pseudo_store`); the methods' generators live in their packages (``wsis.methods.<m>.generator``)
and register by import (``import wsis.methods.generators``).
"""
from .box_fill import BoxFillGenerator
from .registry import PSEUDO_MASK_GENERATOR_REGISTRY, build_generator, generator_from_config, register_generator
from .runner import run_generator

__all__ = ["BoxFillGenerator", "PSEUDO_MASK_GENERATOR_REGISTRY", "build_generator", "generator_from_config",
           "register_generator", "run_generator"]
