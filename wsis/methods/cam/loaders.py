"""The image-tag classifier's loaders and evaluator in :class:`wsis.engine.WSISTrainer` (a ``WSIS_LOADERS`` entry
claimed by the ``CAMClassifier`` meta-architecture)."""
from detectron2.data import build_detection_test_loader, build_detection_train_loader, get_detection_dataset_dicts
from detectron2.evaluation import DatasetEvaluators

from wsis.data.mapper import WeakDatasetMapper
from wsis.engine.loaders import LOADERS_REGISTRY
from wsis.evaluation.evaluators import MultiLabelClassificationEvaluator

__all__ = ["CAMTagLoaders"]


@LOADERS_REGISTRY.register()
class CAMTagLoaders:
    """
    Every image of ``DATASETS.TRAIN``, tagged or not (``filter_empty=False``: a tag dataset has no annotations, and an
    untagged image is all background), through :class:`WeakDatasetMapper` (``"image_labels"`` pass through; an
    unreadable image is reported with its file and id); multi-label classification mAP / F1 at test.
    """

    meta_architectures = ("CAMClassifier",)

    @classmethod
    def build_train_loader(cls, cfg):
        dicts = get_detection_dataset_dicts(list(cfg.DATASETS.TRAIN), filter_empty=False)
        return build_detection_train_loader(cfg, mapper=WeakDatasetMapper(cfg, is_train=True), dataset=dicts)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_detection_test_loader(cfg, dataset_name, mapper=WeakDatasetMapper(cfg, is_train=False))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return DatasetEvaluators([MultiLabelClassificationEvaluator(
            dataset_name, threshold=cfg.MODEL.CAM.SCORE_THRESHOLD, output_dir=output_folder)])
