"""Detectron2 glue: a DatasetMapper that honours weak labels (box-only instances, pseudo masks, ignore regions)."""
import logging

import numpy as np
import pycocotools.mask as mask_util
import torch
from detectron2.config import configurable
from detectron2.data import DatasetMapper
from detectron2.data import detection_utils as utils
from detectron2.structures import BitMasks, Boxes, BoxMode, Instances, PolygonMasks, polygons_to_bitmask

from wsis.core.color import rgb_to_lab
from wsis.core.fields import PerImageField, PerInstanceField

__all__ = ["WeakDatasetMapper", "weak_annotations_to_instances"]

logger = logging.getLogger(__name__)


def weak_annotations_to_instances(annos, image_size, use_masks=True, mask_format="bitmask"):
    """
    Like ``detection_utils.annotations_to_instances``, for instances that may or may not have a mask.

    Args:
        annos (list[dict]): transformed annotations (XYXY_ABS boxes); a usable mask is a "segmentation" that is
            polygons or an (H, W) array; "mask_valid" (default: has a segmentation) says whether it gives loss.
        image_size (tuple): (H, W).
        use_masks (bool): add ``gt_masks`` and ``gt_mask_valid`` (always both, so box-only data never hits
            "Cannot find field gt_masks").
        mask_format (str): "polygon" keeps ``PolygonMasks`` when every instance has a valid polygon mask;
            otherwise masks are ``BitMasks``, all-zero for instances without one.

    Returns:
        Instances: gt_boxes, gt_classes and, with ``use_masks``, gt_masks (N, H, W) and gt_mask_valid (N,) bool.
    """
    h, w = image_size
    target = Instances(image_size)
    boxes = [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in annos]
    target.gt_boxes = Boxes(torch.as_tensor(np.array(boxes, dtype=np.float32).reshape(-1, 4)))
    target.gt_boxes.clip(image_size)
    target.gt_classes = torch.tensor([int(a["category_id"]) for a in annos], dtype=torch.int64)
    if not use_masks:
        return target
    valid = [bool(a.get("mask_valid", "segmentation" in a)) and "segmentation" in a for a in annos]
    if mask_format == "polygon" and annos and all(valid) and all(isinstance(a["segmentation"], list) for a in annos):
        target.gt_masks = PolygonMasks([a["segmentation"] for a in annos])
    else:
        masks = np.zeros((len(annos), h, w), dtype=bool)
        for i, (a, ok) in enumerate(zip(annos, valid)):
            if not ok:
                continue
            segm = a["segmentation"]
            if isinstance(segm, list):
                masks[i] = polygons_to_bitmask(segm, h, w)
            elif isinstance(segm, np.ndarray):
                if segm.shape[:2] != (h, w):
                    raise ValueError(f"mask of shape {segm.shape} does not match image size {(h, w)}")
                masks[i] = segm > 0
            else:
                raise ValueError(f"unsupported transformed segmentation type {type(segm)}")
        target.gt_masks = BitMasks(torch.from_numpy(masks))
    target.gt_mask_valid = torch.tensor(valid, dtype=torch.bool)
    return target


class WeakDatasetMapper(DatasetMapper):
    """
    ``DatasetMapper`` for weakly-annotated dicts (format of :mod:`wsis.data.coco_weak`, pseudo masks attached by
    :func:`wsis.data.pseudo_store.attach_pseudo_masks`). Compared with Detectron2's mapper it

    * keeps box-only instances next to masked ones, adding ``gt_mask_valid`` (and all-zero masks where there is
      none) instead of failing or dropping them;
    * transforms the per-image ``"ignore_mask"`` (RLE: pixels of no instance) and each annotation's own
      ``"ignore_segmentation"`` (RLE) with the image, and attaches ``gt_ignore``: a
      :class:`~wsis.core.fields.PerImageField` of the image region when no instance has its own, else a
      :class:`~wsis.core.fields.PerInstanceField` of each instance's own region ∪ the image's, so an overlap ignored
      for one instance stays a negative for the others; ``dataset_dict["ignore_mask"]`` is the (H, W) bool image
      region;
    * recomputes boxes from masks (Detectron2's ``recompute_boxes``: on by default with ``MASK_ON`` and crop
      augmentation) only for instances whose valid mask is a registered, real one: never from a pseudo mask
      (``"pseudo_mask"``), which may be smaller than its box, nor for box-only instances, which have none;
    * drops an instance only when its box becomes empty, or its *valid* mask becomes empty after cropping;
    * reports an unreadable image with its file name and image id.

    * with ``image_lab=True`` (BoxInst's colour-affinity loss), attaches the augmented image in CIE Lab as
      ``gt_image_lab`` (:class:`PerImageField`, (3, H, W)).

    The output keeps ``"image_labels"`` (image-level tags) untouched. Picklable: holds no open files.
    """

    @configurable
    def __init__(self, is_train: bool, *, image_lab: bool = False, **kwargs):
        super().__init__(is_train, **kwargs)
        self.image_lab = image_lab

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        ret = super().from_config(cfg, is_train)
        box_sup = cfg.MODEL.ROI_MASK_HEAD.get("BOX_SUPERVISION", None)
        ret["image_lab"] = bool(box_sup is not None and box_sup.LOSS == "boxinst" and cfg.MODEL.MASK_ON)
        return ret

    def __call__(self, dataset_dict):
        try:
            return super().__call__(dataset_dict)
        except (OSError, SyntaxError, ValueError) as e:
            msg = f"{dataset_dict.get('file_name')} (image id {dataset_dict.get('image_id')}): {e}"
            try:
                err = type(e)(msg)
            except Exception:  # an exception type that needs more arguments
                err = RuntimeError(msg)
            raise err from e

    def _transform_annotations(self, dataset_dict, transforms, image_shape):
        ignore_rle = dataset_dict.pop("ignore_mask", None)
        annos, own_ignores, real_masks = [], [], []
        for obj in dataset_dict.pop("annotations"):
            if obj.get("iscrowd", 0):
                continue
            obj = dict(obj)
            valid = bool(obj.get("mask_valid", "segmentation" in obj)) and "segmentation" in obj
            if not (self.use_instance_mask and valid):
                obj.pop("segmentation", None)
            if not self.use_keypoint:
                obj.pop("keypoints", None)
            obj["mask_valid"] = valid and self.use_instance_mask
            own = obj.pop("ignore_segmentation", None)
            own_ignores.append(_transform_region(own, transforms) if own is not None and self.use_instance_mask
                               else None)
            real_masks.append(obj["mask_valid"] and not obj.get("pseudo_mask", False))
            annos.append(
                utils.transform_instance_annotations(
                    obj, transforms, image_shape, keypoint_hflip_indices=self.keypoint_hflip_indices
                )
            )
        instances = weak_annotations_to_instances(
            annos, image_shape, use_masks=self.use_instance_mask, mask_format=self.instance_mask_format
        )
        if self.recompute_boxes and self.use_instance_mask and any(real_masks):
            real = torch.tensor(real_masks, dtype=torch.bool)
            recomputed = instances.gt_masks.get_bounding_boxes().tensor
            instances.gt_boxes.tensor[real] = recomputed[real]
        keep = instances.gt_boxes.nonempty(threshold=1e-5)
        if self.use_instance_mask:
            keep &= ~instances.gt_mask_valid | instances.gt_masks.nonempty()
        region = _transform_region(ignore_rle, transforms) if ignore_rle is not None else None
        if region is not None:
            dataset_dict["ignore_mask"] = region
        if self.use_instance_mask and any(o is not None for o in own_ignores):
            base = region if region is not None else torch.zeros(image_shape, dtype=torch.bool)
            per = torch.stack([base | o if o is not None else base for o in own_ignores])
            instances.gt_ignore = PerInstanceField(per.reshape(-1, *image_shape))
        elif self.use_instance_mask and region is not None:
            instances.gt_ignore = PerImageField(region, len(instances))
        instances = instances[keep]
        if self.image_lab and self.use_instance_mask:
            image = dataset_dict["image"]  # (3, H, W) uint8 in self.image_format
            rgb = image.flip(0) if self.image_format == "BGR" else image
            instances.gt_image_lab = PerImageField(rgb_to_lab(rgb), len(instances))
        dataset_dict["instances"] = instances


def _transform_region(rle, transforms):
    """An RLE region through the image's transforms → (H', W') bool tensor."""
    region = transforms.apply_segmentation(mask_util.decode(dict(rle, counts=_counts(rle))).astype(np.uint8)) > 0
    return torch.from_numpy(np.ascontiguousarray(region))


def _counts(rle):
    counts = rle["counts"]
    return counts.encode("ascii") if isinstance(counts, str) else counts

