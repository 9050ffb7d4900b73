"""Detectron2 glue: training dicts with pseudo masks attached, and the weak-label train loader."""
import logging

from detectron2.data import build_detection_train_loader, get_detection_dataset_dicts

from .mapper import WeakDatasetMapper
from .pseudo_store import attach_pseudo_masks, load_pseudo_masks

__all__ = ["get_weak_train_dicts", "build_weak_train_loader"]

logger = logging.getLogger(__name__)


def get_weak_train_dicts(cfg):
    """
    ``DATASETS.TRAIN`` loaded as Detectron2 does, then each dataset's pseudo-mask file (``WSIS.DATA.PSEUDO_MASKS``,
    one per dataset, same order) validated against it and attached (``mask_valid``, ``ignore_mask``).
    """
    names = list(cfg.DATASETS.TRAIN)
    files = list(cfg.WSIS.DATA.PSEUDO_MASKS)
    if files and len(files) != len(names):
        raise ValueError(
            f"WSIS.DATA.PSEUDO_MASKS has {len(files)} file(s) for {len(names)} training set(s) {names}: give one "
            "pseudo-mask file per DATASETS.TRAIN entry, in the same order"
        )
    proposal_files = list(cfg.DATASETS.PROPOSAL_FILES_TRAIN) if cfg.MODEL.LOAD_PROPOSALS else None
    dicts = []
    for i, name in enumerate(names):
        part = get_detection_dataset_dicts(
            [name],
            filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
            min_keypoints=0,
            proposal_files=[proposal_files[i]] if proposal_files else None,
        )
        if files:
            _, records = load_pseudo_masks(files[i], part, require_all=cfg.WSIS.DATA.PSEUDO_MASKS_REQUIRE_ALL)
            part = attach_pseudo_masks(part, records, keep_existing_masks=cfg.WSIS.DATA.KEEP_GT_MASKS)
            anns = [a for d in part for a in d["annotations"] if not a.get("iscrowd", 0)]
            n_valid = sum(bool(a.get("mask_valid", False)) for a in anns)
            logger.info(f"{name}: {files[i]} gives {n_valid}/{len(anns)} instances a valid mask")
        dicts.extend(part)
    return dicts


def build_weak_train_loader(cfg, mapper=None):
    """Detectron2's train loader over :func:`get_weak_train_dicts` with :class:`WeakDatasetMapper`."""
    mapper = mapper if mapper is not None else WeakDatasetMapper(cfg, is_train=True)
    return build_detection_train_loader(cfg, mapper=mapper, dataset=get_weak_train_dicts(cfg))
