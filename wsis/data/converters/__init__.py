"""Dataset converters (detectron2-free): VOC 2012 + SBD → COCO json; salient-object folders → dataset dicts."""
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
    "SALIENT_EXTENSIONS",
    "VOC_CLASSES",
    "VOC_SBD_SPLITS",
    "ConversionError",
    "binarize_salient_mask",
    "build_voc_sbd_coco",
    "convert_voc_sbd",
    "count_salient_objects",
    "coco_mask_fields",
    "load_salient_folder",
    "load_sbd_instances",
    "load_voc_instances",
    "salient_folder_to_coco",
    "salient_objects",
    "voc_sbd_image_list",
]
