"""
Detectron2 glue of BoxCaseg's crop-level data (§3.2): the crop mapper and the mixed box/salient training loader.
"""
import logging

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import DatasetFromList, MapDataset, get_detection_dataset_dicts
from detectron2.data import detection_utils as utils
from detectron2.data.build import trivial_batch_collator, worker_init_reset_seed
from detectron2.utils import comm

from wsis.core.boxes import annotation_box

from .crops import augment_box, crop_box_sample, proxy_crop, salient_sample
from .samples import box_samples, salient_mask_of, salient_samples
from .sampler import RatioBatchSampler

__all__ = ["BoxCasegCropMapper", "build_boxcaseg_train_loader"]
logger = logging.getLogger(__name__)


def _chw(image):
    return torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))


class BoxCasegCropMapper:
    """
    Training (``is_train=True``): a box sample → its jittered box crop (``augment_box`` + ``crop_box_sample``) with
    the box rectangle as label; a salient sample → resized, randomly cropped and flipped image and mask, with the
    tight box of the mask as MIL label. Returns ``{"image": (3, S, S) uint8, "box_label": (S, S) bool,
    "salient_mask": (S, S) bool or None, "is_salient": bool, "image_id", "annotation_id"}``.

    Inference (``is_train=False``, proxy masks §3.4): a whole-image dataset dict → ``{"image": (N, 3, s, s) uint8``
    crops of its N non-crowd boxes, exactly, resized to ``proxy_crop_size``, ``"annotations"`` those N
    annotations, ``"image_id", "height", "width", "file_name"}``.
    """

    @configurable
    def __init__(self, is_train=True, *, image_format="BGR", crop_size=288, salient_resize=320, center_jitter=0.25,
                 scale_range=(0.5, 1.5), proxy_crop_size=320):
        self.is_train = is_train
        self.image_format = image_format
        self.crop_size = crop_size
        self.salient_resize = salient_resize
        self.center_jitter = center_jitter
        self.scale_range = tuple(scale_range)
        self.proxy_crop_size = proxy_crop_size

    @classmethod
    def from_config(cls, cfg, is_train=True):
        bd = cfg.WSIS.BOXCASEG
        return {"is_train": is_train, "image_format": cfg.INPUT.FORMAT, "crop_size": bd.CROP_SIZE,
                "salient_resize": bd.SALIENT_RESIZE, "center_jitter": bd.CENTER_JITTER,
                "scale_range": bd.SCALE_RANGE, "proxy_crop_size": bd.PROXY_CROP_SIZE}

    def _read(self, d):
        try:
            image = utils.read_image(d["file_name"], format=self.image_format)
        except Exception as e:
            raise OSError(f"{d['file_name']}: image id {d['image_id']}: cannot read the image: {e}") from e
        if image.shape[:2] != (d["height"], d["width"]):
            raise ValueError(f"{d['file_name']}: image id {d['image_id']}: the image is "
                             f"{image.shape[1]}x{image.shape[0]}, the annotations say {d['width']}x{d['height']}")
        return image

    def __call__(self, d):
        image = self._read(d)
        if not self.is_train:
            return self._proxy_inputs(d, image)
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        if d["salient"]:
            mask = salient_mask_of({**d, "annotations": [{"segmentation": s} for s in d["mask"]]})
            img, m, label = salient_sample(image, mask, rng, self.salient_resize, self.crop_size)
            salient = torch.as_tensor(m)
        else:
            crop_box = augment_box(d["box"], rng, self.center_jitter, self.scale_range)
            img, label = crop_box_sample(image, d["box"], crop_box, self.crop_size)
            salient = None
        return {"image": _chw(img), "box_label": torch.as_tensor(label), "salient_mask": salient,
                "is_salient": bool(d["salient"]), "image_id": d["image_id"], "annotation_id": d.get("annotation_id")}

    def _proxy_inputs(self, d, image):
        anns = [a for a in d.get("annotations", ()) if not a.get("iscrowd", 0)]
        s = self.proxy_crop_size
        crops = [proxy_crop(image, annotation_box(a, d["file_name"]), s)[0] for a in anns]
        images = torch.stack([_chw(c) for c in crops]) if crops else torch.zeros((0, 3, s, s), dtype=torch.uint8)
        return {"image": images, "annotations": anns, "image_id": d["image_id"], "height": d["height"],
                "width": d["width"], "file_name": d["file_name"]}


def build_boxcaseg_train_loader(cfg, mapper=None):
    """
    Crops of every box of ``DATASETS.TRAIN`` and every image of ``WSIS.BOXCASEG.SALIENT_DATASETS``, in batches of
    ``SOLVER.IMS_PER_BATCH`` crops (split over the processes) at the fixed box:salient ``WSIS.BOXCASEG.RATIO``
    (:class:`wsis.methods.boxcaseg.sampler.RatioBatchSampler`; an infinite stream, as Detectron2's training loaders).
    """
    bd = cfg.WSIS.BOXCASEG
    if not bd.SALIENT_DATASETS:
        raise ValueError("BoxCaseg needs salient images: set WSIS.BOXCASEG.SALIENT_DATASETS (e.g. ('ecssd_train',))")
    seed = cfg.SEED if cfg.SEED >= 0 else 0
    boxes = box_samples(get_detection_dataset_dicts(cfg.DATASETS.TRAIN, filter_empty=True), bd.OVERLAP_IOU,
                        bd.OVERLAP_DROP_PROB, seed)
    salient = salient_samples(get_detection_dataset_dicts(bd.SALIENT_DATASETS, filter_empty=False))
    logger.info(f"BoxCaseg crops: {len(boxes)} boxes of {cfg.DATASETS.TRAIN}, {len(salient)} salient images of "
                f"{bd.SALIENT_DATASETS}, ratio {tuple(bd.RATIO)} per batch")
    world = comm.get_world_size()
    if cfg.SOLVER.IMS_PER_BATCH % world:
        raise ValueError(f"SOLVER.IMS_PER_BATCH {cfg.SOLVER.IMS_PER_BATCH} is not divisible by {world} processes")
    sampler = RatioBatchSampler(range(len(boxes)), range(len(boxes), len(boxes) + len(salient)),
                                batch_size=cfg.SOLVER.IMS_PER_BATCH // world, ratio=tuple(bd.RATIO), seed=seed,
                                rank=comm.get_rank(), world_size=world)
    dataset = MapDataset(DatasetFromList(boxes + salient, copy=False), mapper or BoxCasegCropMapper(cfg, True))
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.DATALOADER.NUM_WORKERS,
                                       collate_fn=trivial_batch_collator, worker_init_fn=worker_init_reset_seed)
