"""Detectron2 glue: training dicts with pseudo masks attached, and the weak-label train loader."""
import logging

from detectron2.data import DatasetCatalog, build_detection_train_loader, get_detection_dataset_dicts
from detectron2.data.build import filter_images_with_only_crowd_annotations

from .mapper import WeakDatasetMapper
from .pseudo_store import attach_pseudo_masks, load_pseudo_masks
from .semantic_labels import attach_semantic_labels

__all__ = ["get_weak_train_dicts", "build_weak_train_loader"]

logger = logging.getLogger(__name__)


def get_weak_train_dicts(cfg):
    """
    ``DATASETS.TRAIN`` loaded as Detectron2 does, with ``WSIS.DATA.PSEUDO_MASKS`` validated against it and attached
    (``mask_valid``, per-instance and per-image ignore regions): one file per ``DATASETS.TRAIN`` entry (same order),
    or one file for all of them (their image ids must then be unique across the sets). Instances no file covers
    train on their registered masks only with ``WSIS.DATA.KEEP_GT_MASKS`` (logged), else on box and class only.
    ``WSIS.DATA.SEMANTIC_LABELS`` folders give each image its ``sem_seg_file_name`` (a missing map is an error that
    names the image).
    """
    names = list(cfg.DATASETS.TRAIN)
    dicts = _get_pseudo_mask_dicts(cfg, names)
    folders = list(cfg.WSIS.DATA.get("SEMANTIC_LABELS", ()))
    if not folders:
        return dicts
    if len(folders) not in (1, len(names)):
        raise ValueError(f"WSIS.DATA.SEMANTIC_LABELS has {len(folders)} folders for {len(names)} training sets "
                         f"{names}: give one folder for all of them, or one per DATASETS.TRAIN entry")
    if len(folders) == 1:
        return attach_semantic_labels(dicts, folders[0])
    folder_of = {}
    for name, folder in zip(names, folders):
        folder_of.update({d["image_id"]: folder for d in DatasetCatalog.get(name)})
    return [attach_semantic_labels([d], folder_of[d["image_id"]])[0] for d in dicts]


def _get_pseudo_mask_dicts(cfg, names):
    files = list(cfg.WSIS.DATA.PSEUDO_MASKS)
    if files and len(files) not in (1, len(names)):
        raise ValueError(
            f"WSIS.DATA.PSEUDO_MASKS has {len(files)} files for {len(names)} training sets {names}: give one file "
            "for all of them, or one per DATASETS.TRAIN entry in the same order"
        )
    proposal_files = list(cfg.DATASETS.PROPOSAL_FILES_TRAIN) if cfg.MODEL.LOAD_PROPOSALS else None
    # with pseudo masks, empty images are filtered after attaching: a store made from tags (IRNet) gives images
    # that have no annotation of their own their instances
    filter_empty = cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
    parts = [
        get_detection_dataset_dicts(
            [name], filter_empty=filter_empty and not files, min_keypoints=0,
            proposal_files=[proposal_files[i]] if proposal_files else None,
        )
        for i, name in enumerate(names)
    ]
    if not files:
        return [d for part in parts for d in part]
    if len(files) == 1 and len(names) > 1:
        groups = [(files[0], " + ".join(names), _unique_ids([d for part in parts for d in part], names))]
    else:
        groups = list(zip(files, names, parts))
    dicts = []
    for file, name, part in groups:
        _, records = load_pseudo_masks(file, part, require_all=cfg.WSIS.DATA.PSEUDO_MASKS_REQUIRE_ALL)
        part = attach_pseudo_masks(part, records, keep_existing_masks=cfg.WSIS.DATA.KEEP_GT_MASKS)
        anns = [a for d in part for a in d["annotations"] if not a.get("iscrowd", 0)]
        n_valid = sum(bool(a.get("mask_valid", False)) for a in anns)
        n_real = sum(bool(a.get("mask_valid", False)) and not a.get("pseudo_mask", False) for a in anns)
        logger.info(f"{name}: {file} gives {n_valid}/{len(anns)} instances a valid mask"
                    + (f" ({n_real} of them their registered ground-truth mask, WSIS.DATA.KEEP_GT_MASKS)"
                       if n_real else ""))
        dicts.extend(part)
    return filter_images_with_only_crowd_annotations(dicts) if filter_empty else dicts


def _unique_ids(dicts, names):
    seen = {}
    for d in dicts:
        if d["image_id"] in seen:
            raise ValueError(f"image id {d['image_id']} ({d.get('file_name')}) appears in more than one of "
                             f"{names}: one WSIS.DATA.PSEUDO_MASKS file for all of them needs unique image ids; "
                             "give one file per training set instead")
        seen[d["image_id"]] = True
    return dicts


def build_weak_train_loader(cfg, mapper=None):
    """Detectron2's train loader over :func:`get_weak_train_dicts` with :class:`WeakDatasetMapper`."""
    mapper = mapper if mapper is not None else WeakDatasetMapper(cfg, is_train=True)
    return build_detection_train_loader(cfg, mapper=mapper, dataset=get_weak_train_dicts(cfg))
