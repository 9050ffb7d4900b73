"""Detectron2 glue: dataset registration. Importing this package registers wsis's builtin datasets."""
from .register import register_coco_panoptic_from_json, register_coco_weak, register_salient_folder
from . import builtin  # noqa: F401  (registers the builtin datasets)

__all__ = ["register_coco_weak", "register_salient_folder", "register_coco_panoptic_from_json"]
