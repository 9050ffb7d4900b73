"""Detectron2 glue: dataset registration. Importing this package registers wsis's builtin datasets."""
from .register import (
    register_coco_panoptic_from_json,
    register_coco_weak,
    register_panoptic_semantic,
    register_salient_folder,
    register_semantic_ground_truth,
    register_semantic_labels,
)
from . import builtin  # noqa: F401  (registers the builtin datasets)
from .builtin import register_coco_panoptic_halves, register_copy_paste, register_split_instance_set

__all__ = ["register_coco_weak", "register_salient_folder", "register_coco_panoptic_from_json",
           "register_semantic_labels", "register_semantic_ground_truth", "register_panoptic_semantic",
           "register_copy_paste", "register_coco_panoptic_halves", "register_split_instance_set"]
