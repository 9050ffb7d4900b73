"""The panoptic network's loaders and evaluators in :class:`wsis.engine.WSISTrainer` (a ``WSIS_LOADERS`` entry
claimed by ``WSPSPanopticNetwork``)."""
from detectron2.data import (DatasetCatalog, MetadataCatalog, build_detection_test_loader,
                             build_detection_train_loader)
from detectron2.evaluation import DatasetEvaluators

from wsis.engine.loaders import LOADERS_REGISTRY, build_dataset_evaluators
from wsis.evaluation.evaluators import PanopticSegmentEvaluator

from .label_folder import attach_panoptic_labels
from .mapper import PanopticLabelMapper

__all__ = ["WSPSPanopticLoaders", "get_panoptic_train_dicts"]


def get_panoptic_train_dicts(cfg):
    """
    ``DATASETS.TRAIN`` with the panoptic labels of ``WSIS.DATA.PANOPTIC_LABELS`` attached (one folder for all of
    them, or one per entry; weak, semi-supervised or true labels alike: ``tools/make_panoptic_labels.py``). Without
    folders the sets must carry ``pan_seg_file_name`` themselves. An image without a label is an error naming it.
    """
    names = list(cfg.DATASETS.TRAIN)
    folders = list(cfg.WSIS.DATA.PANOPTIC_LABELS)
    if folders and len(folders) not in (1, len(names)):
        raise ValueError(f"WSIS.DATA.PANOPTIC_LABELS has {len(folders)} folders for {len(names)} training sets "
                         f"{names}: give one folder for all of them, or one per DATASETS.TRAIN entry")
    dicts = []
    for k, name in enumerate(names):
        part = DatasetCatalog.get(name)
        if folders:
            md = MetadataCatalog.get(name)
            to_contiguous = dict(md.get("thing_dataset_id_to_contiguous_id", {}))
            to_contiguous.update(md.get("stuff_dataset_id_to_contiguous_id", {}))
            part = attach_panoptic_labels(part, folders[k if len(folders) > 1 else 0], to_contiguous)
        missing = [d for d in part if "pan_seg_file_name" not in d]
        if missing:
            raise ValueError(f"{name}: image id {missing[0]['image_id']} ({missing[0].get('file_name')}) has no "
                             "panoptic label; set WSIS.DATA.PANOPTIC_LABELS")
        dicts.extend(part)
    return dicts


@LOADERS_REGISTRY.register()
class WSPSPanopticLoaders:
    """Images with panoptic labels + thing boxes through :class:`PanopticLabelMapper`; PQ, AP^r and mIoU on a
    panoptic test set (``evaluator_type`` "coco_panoptic_seg")."""

    meta_architectures = ("WSPSPanopticNetwork",)

    @classmethod
    def build_train_loader(cls, cfg):
        return build_detection_train_loader(cfg, mapper=PanopticLabelMapper(cfg, is_train=True),
                                            dataset=get_panoptic_train_dicts(cfg))

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_detection_test_loader(cfg, dataset_name, mapper=PanopticLabelMapper(cfg, is_train=False))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        evaluators = build_dataset_evaluators(cfg, dataset_name, output_folder)
        if MetadataCatalog.get(dataset_name).get("evaluator_type") != "coco_panoptic_seg":
            return evaluators
        segments = PanopticSegmentEvaluator(dataset_name, iou_thresholds=cfg.WSIS.EVAL.APR_IOU_THRESHOLDS,
                                            output_dir=output_folder)
        return DatasetEvaluators([evaluators, segments])
