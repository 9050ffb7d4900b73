"""
How a method trains and is evaluated in :class:`wsis.engine.WSISTrainer`: its train loader, test loader and
evaluators, registered in :data:`LOADERS_REGISTRY` (an fvcore ``Registry``, as Detectron2 registers everything).

``WSIS.DATA.LOADERS`` names the entry; with "auto" (the default) the entry whose ``meta_architectures`` claims
``MODEL.META_ARCHITECTURE`` is used (BoxCaseg's crop loaders for ``BoxCaseg``), else :class:`WeakInstanceLoaders`.
A new method registers a class with the three classmethods below, by import; the trainer compares no strings.
"""
import os

from detectron2.data import MetadataCatalog, build_detection_test_loader
from detectron2.evaluation import COCOEvaluator, DatasetEvaluators, SemSegEvaluator
from fvcore.common.registry import Registry

from wsis.data.build import build_weak_train_loader
from wsis.data.mapper import WeakDatasetMapper
from wsis.evaluation.evaluators import InstanceAPrEvaluator, PanopticQualityEvaluator

__all__ = ["LOADERS_REGISTRY", "WeakInstanceLoaders", "get_loaders", "build_dataset_evaluators"]

LOADERS_REGISTRY = Registry("WSIS_LOADERS")
LOADERS_REGISTRY.__doc__ = """
Train/test loaders and evaluators of a wsis method: a class with ``meta_architectures`` (tuple of names it serves
under ``WSIS.DATA.LOADERS: "auto"``) and classmethods ``build_train_loader(cfg)``, ``build_test_loader(cfg,
dataset_name)`` and ``build_evaluator(cfg, dataset_name, output_folder)``.
"""


def build_dataset_evaluators(cfg, dataset_name, output_folder):
    """
    Evaluators by the dataset's ``evaluator_type``: "coco" → AP^r (+ COCO box/mask AP when ``WSIS.EVAL.COCO``);
    "coco_panoptic_seg" → PQ; "sem_seg" → mIoU.
    """
    evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type", "coco")
    evaluators = []
    if evaluator_type == "coco":
        if cfg.MODEL.MASK_ON:
            evaluators.append(InstanceAPrEvaluator(dataset_name, iou_thresholds=cfg.WSIS.EVAL.APR_IOU_THRESHOLDS,
                                                   interpolation=cfg.WSIS.EVAL.APR_INTERPOLATION,
                                                   output_dir=output_folder))
        if cfg.WSIS.EVAL.COCO:
            evaluators.append(COCOEvaluator(dataset_name, output_dir=output_folder, allow_cached_coco=False))
    elif evaluator_type == "coco_panoptic_seg":
        evaluators.append(PanopticQualityEvaluator(dataset_name, output_dir=output_folder))
    elif evaluator_type == "sem_seg":
        evaluators.append(SemSegEvaluator(dataset_name, distributed=True, output_dir=output_folder))
    if not evaluators:
        raise NotImplementedError(f"no evaluator for dataset {dataset_name} of type {evaluator_type!r}")
    return DatasetEvaluators(evaluators)


@LOADERS_REGISTRY.register()
class WeakInstanceLoaders:
    """Weak annotations + pseudo masks (``WSIS.DATA.PSEUDO_MASKS``) through :class:`WeakDatasetMapper`; the papers'
    metrics by dataset type. Every R-CNN-style method (Proxy Mask R-CNN, BBTP) trains with these."""

    meta_architectures = ()

    @classmethod
    def build_train_loader(cls, cfg):
        return build_weak_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_detection_test_loader(cfg, dataset_name, mapper=WeakDatasetMapper(cfg, is_train=False))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return build_dataset_evaluators(cfg, dataset_name, output_folder)


def get_loaders(cfg):
    """The :data:`LOADERS_REGISTRY` entry of ``cfg`` (``WSIS.DATA.LOADERS``; "auto": by meta-architecture)."""
    name = cfg.WSIS.DATA.get("LOADERS", "auto")
    if name != "auto":
        return LOADERS_REGISTRY.get(name)
    arch = cfg.MODEL.META_ARCHITECTURE
    claims = [obj for _, obj in sorted(LOADERS_REGISTRY, key=lambda kv: kv[0]) if arch in obj.meta_architectures]
    if len(claims) > 1:
        raise ValueError(f"several WSIS_LOADERS entries claim {arch}: {[c.__name__ for c in claims]}; "
                         "choose one with WSIS.DATA.LOADERS")
    return claims[0] if claims else WeakInstanceLoaders


def default_output_folder(cfg, output_folder=None):
    return output_folder or os.path.join(cfg.OUTPUT_DIR, "inference")
