"""
Pseudo-mask synthesis from weak labels (detectron2-free).

A generator is a picklable callable ``generator(dataset_dict) -> image record`` (the record format of
:mod:`wsis.data.pseudo_store`), registered in :data:`PSEUDO_MASK_GENERATORS` by name; :func:`run_generator`
runs one over a dataset with workers, progress, resume and a report of skipped bad inputs.
"""
from .box_fill import BoxFillGenerator
from .build import PSEUDO_MASK_GENERATORS, build_generator, register_generator
from .merge import paint_smallest_last
from .runner import run_generator
from . import wsps  # noqa: E402  registers "wsps" and "wsps_round"

__all__ = ["BoxFillGenerator", "PSEUDO_MASK_GENERATORS", "build_generator", "register_generator", "paint_smallest_last", "run_generator"]
