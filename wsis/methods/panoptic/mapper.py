"""``PanopticLabelMapper``: a training image with its panoptic label (pseudo or true) and its thing boxes."""
import copy

import numpy as np
import torch

from detectron2.config import configurable
from detectron2.data import DatasetMapper
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.structures import BoxMode

from .label_folder import panoptic_index_map, read_panoptic_ids

__all__ = ["PanopticLabelMapper"]


class PanopticLabelMapper(DatasetMapper):
    """
    ``DatasetMapper`` for ``WSPSPanopticNetwork``. In training, the image and its panoptic label
    (``pan_seg_file_name`` + ``segments_info``, contiguous classes) go through the same augmentations, and the
    output holds

    * ``sem_seg``: (H, W) long class of each pixel's segment (crowd segments included), 255 void;
    * ``pan_seg``: (H, W) long index of each pixel's segment in ``pan_classes``, 255 void and crowd;
    * ``pan_classes``: (G,) long;
    * ``instances``: the thing boxes of the dict's non-crowd annotations (classes < ``MODEL.ROI_HEADS.NUM_CLASSES``;
      stuff annotations, if any, are left out), boxes only, for the detector; a dict without annotations (a
      panoptic set as detectron2 registers it, e.g. ``coco_2017_train_panoptic``) gives its segments' ``bbox``.

    At test time it is detectron2's mapper. A label that cannot be read, or does not fit the image or the model,
    is an error naming the image's file and id.
    """

    @configurable
    def __init__(self, is_train: bool, *, num_thing_classes: int, num_classes: int, **kwargs):
        super().__init__(is_train, **kwargs)
        self.num_thing_classes = num_thing_classes
        self.num_classes = num_classes

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        ret = super().from_config(cfg, is_train)
        ret.update(num_thing_classes=cfg.MODEL.ROI_HEADS.NUM_CLASSES, num_classes=cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
                   use_instance_mask=False, use_keypoint=False, recompute_boxes=False)
        return ret

    def __call__(self, dataset_dict):
        if not self.is_train:
            return super().__call__(dataset_dict)
        d = copy.deepcopy(dataset_dict)
        where = f"{d.get('file_name')} (image id {d.get('image_id')})"
        try:
            image = utils.read_image(d["file_name"], format=self.image_format)
            utils.check_image_size(d, image)
            if "pan_seg_file_name" not in d:
                raise ValueError("no panoptic label (set WSIS.DATA.PANOPTIC_LABELS)")
            index, classes, crowd = panoptic_index_map(read_panoptic_ids(d["pan_seg_file_name"]), d["segments_info"])
            if index.shape != image.shape[:2]:
                raise ValueError(f"panoptic label {d['pan_seg_file_name']} is {index.shape}, the image "
                                 f"{image.shape[:2]}")
            if len(classes) and (classes.min() < 0 or classes.max() >= self.num_classes):
                raise ValueError(f"segment classes {sorted(set(classes.tolist()))} outside the model's "
                                 f"{self.num_classes} classes")
        except (OSError, ValueError, KeyError) as e:
            raise type(e)(f"{where}: {e}") from e
        aug = T.AugInput(image, sem_seg=index)
        transforms = self.augmentations(aug)
        image, index = aug.image, torch.as_tensor(aug.sem_seg.astype(np.int64))
        shape = image.shape[:2]
        d["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        classes, crowd = torch.as_tensor(classes), torch.as_tensor(crowd)
        labelled = index != 255
        sem = torch.full_like(index, 255)
        pan = torch.full_like(index, 255)
        if len(classes):
            seg = index.clamp(max=len(classes) - 1)
            sem[labelled] = classes[seg[labelled]]
            keep = labelled & ~crowd[seg]
            pan[keep] = index[keep]
        d.update(sem_seg=sem, pan_seg=pan, pan_classes=classes)
        annos = []
        for a in d.pop("annotations", None) or _segment_boxes(d["segments_info"]):
            if a.get("iscrowd", 0) or a["category_id"] >= self.num_thing_classes:
                continue
            a = {k: v for k, v in a.items() if k not in ("segmentation", "keypoints")}
            annos.append(utils.transform_instance_annotations(a, transforms, shape))
        d["instances"] = utils.filter_empty_instances(utils.annotations_to_instances(annos, shape))
        return d


def _segment_boxes(segments_info):
    """Box annotations of a panoptic dict's segments (COCO panoptic ``bbox``: x, y, w, h in pixels)."""
    return [{"bbox": s["bbox"], "bbox_mode": BoxMode.XYWH_ABS, "category_id": s["category_id"],
             "iscrowd": s.get("iscrowd", 0)} for s in segments_info if "bbox" in s]
