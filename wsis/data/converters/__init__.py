"""Dataset converters (detectron2-free): VOC 2012 + SBD → COCO json; salient-object folders → dataset dicts; a COCO
panoptic set → things + stuff instance parts (train / val halves)."""
from .panoptic_halves import PANOPTIC_SPLITS, convert_panoptic_halves, panoptic_annotations, split_image_ids
from .salient import (
    SALIENT_EXTENSIONS,
    binarize_salient_mask,
    count_salient_objects,
    load_salient_folder,
    salient_folder_to_coco,
    salient_objects,
)
from .voc_sbd import (
    VOC_CLASSES,
    VOC_SBD_SPLITS,
    ConversionError,
    build_voc_sbd_coco,
    convert_voc_sbd,
    coco_mask_fields,
    load_sbd_instances,
    load_voc_instances,
    voc_sbd_image_list,
)

__all__ = [
    "PANOPTIC_SPLITS",
    "SALIENT_EXTENSIONS",
    "VOC_CLASSES",
    "VOC_SBD_SPLITS",
    "ConversionError",
    "binarize_salient_mask",
    "build_voc_sbd_coco",
    "convert_voc_sbd",
    "count_salient_objects",
    "coco_mask_fields",
    "convert_panoptic_halves",
    "load_salient_folder",
    "load_sbd_instances",
    "load_voc_instances",
    "panoptic_annotations",
    "salient_folder_to_coco",
    "salient_objects",
    "split_image_ids",
    "voc_sbd_image_list",
]
