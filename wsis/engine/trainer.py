"""A ``DefaultTrainer`` that trains on weak labels and evaluates with the metrics of the papers."""
import os

from detectron2.data import MetadataCatalog, build_detection_test_loader
from detectron2.engine import DefaultTrainer
from detectron2.evaluation import COCOEvaluator, DatasetEvaluators, SemSegEvaluator

import wsis.data.datasets  # noqa: F401  (registers builtin datasets)
import wsis.modeling  # noqa: F401  (registers heads)
from wsis.data.boxcaseg_mapper import BoxCasegCropMapper, build_boxcaseg_train_loader
from wsis.data.build import build_weak_train_loader
from wsis.data.mapper import WeakDatasetMapper
from wsis.evaluation.evaluators import InstanceAPrEvaluator, PanopticQualityEvaluator

from .boxcaseg import build_proxy_mask_evaluator

__all__ = ["WSISTrainer", "build_evaluators"]


def _is_boxcaseg(cfg):
    return cfg.MODEL.META_ARCHITECTURE == "BoxCaseg"


def build_evaluators(cfg, dataset_name, output_folder=None):
    """
    BoxCaseg models: :class:`ProxyMaskEvaluator`. Others, evaluators by the dataset's ``evaluator_type``: "coco" → AP^r (+ COCO box/mask AP when ``WSIS.EVAL.COCO``);
    "coco_panoptic_seg" → PQ; "sem_seg" → mIoU.
    """
    output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference")
    if _is_boxcaseg(cfg):  # crop-level model: the class-agnostic quality of its proxy masks
        return DatasetEvaluators([build_proxy_mask_evaluator(cfg, dataset_name, output_folder)])
    evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type", "coco")
    evaluators = []
    if evaluator_type == "coco":
        if cfg.MODEL.MASK_ON:
            evaluators.append(
                InstanceAPrEvaluator(
                    dataset_name, iou_thresholds=cfg.WSIS.EVAL.APR_IOU_THRESHOLDS,
                    interpolation=cfg.WSIS.EVAL.APR_INTERPOLATION, output_dir=output_folder,
                )
            )
        if cfg.WSIS.EVAL.COCO:
            evaluators.append(COCOEvaluator(dataset_name, output_dir=output_folder, allow_cached_coco=False))
    elif evaluator_type == "coco_panoptic_seg":
        evaluators.append(PanopticQualityEvaluator(dataset_name, output_dir=output_folder))
    elif evaluator_type == "sem_seg":
        evaluators.append(SemSegEvaluator(dataset_name, distributed=True, output_dir=output_folder))
    if not evaluators:
        raise NotImplementedError(f"no evaluator for dataset {dataset_name} of type {evaluator_type!r}")
    return DatasetEvaluators(evaluators)


class WSISTrainer(DefaultTrainer):
    """
    Detectron2's trainer with wsis's data path: weak annotations + pseudo masks (``WSIS.DATA.PSEUDO_MASKS``) read
    by :class:`WeakDatasetMapper`, and evaluators chosen by :func:`build_evaluators`. With
    ``MODEL.META_ARCHITECTURE: BoxCaseg`` it trains on mixed box/salient crops (:mod:`wsis.data.boxcaseg_mapper`)
    and evaluates proxy masks.
    """

    @classmethod
    def build_train_loader(cls, cfg):
        if _is_boxcaseg(cfg):
            return build_boxcaseg_train_loader(cfg)
        return build_weak_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        if _is_boxcaseg(cfg):  # one input per image: the crops of all its boxes
            return build_detection_test_loader(cfg, dataset_name, mapper=BoxCasegCropMapper(cfg, is_train=False))
        return build_detection_test_loader(cfg, dataset_name, mapper=WeakDatasetMapper(cfg, is_train=False))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return build_evaluators(cfg, dataset_name, output_folder)
