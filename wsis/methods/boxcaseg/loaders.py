"""BoxCaseg's loaders and evaluator in :class:`wsis.engine.WSISTrainer` (a ``WSIS_LOADERS`` entry, claimed by the
``BoxCaseg`` meta-architecture)."""
from detectron2.data import build_detection_test_loader
from detectron2.evaluation import DatasetEvaluators

from wsis.engine.loaders import LOADERS_REGISTRY

from .evaluator import ProxyMaskEvaluator
from .proxy_masks import proxy_settings
from .mapper import BoxCasegCropMapper, build_boxcaseg_train_loader

__all__ = ["BoxCasegCropLoaders", "build_proxy_mask_evaluator"]


def build_proxy_mask_evaluator(cfg, dataset_name, output_dir=None):
    """:class:`ProxyMaskEvaluator` with ``cfg``'s proxy settings and ``WSIS.BOXCASEG.EVAL_THRESHOLDS`` sweep."""
    return ProxyMaskEvaluator(dataset_name, output_dir=output_dir, sweep_thresholds=cfg.WSIS.BOXCASEG.EVAL_THRESHOLDS,
                              **proxy_settings(cfg))


@LOADERS_REGISTRY.register()
class BoxCasegCropLoaders:
    """BoxCaseg's crop-level model: mixed box/salient crops for training; one input per image (the crops of all its
    boxes) at test, scored by :class:`ProxyMaskEvaluator`."""

    meta_architectures = ("BoxCaseg",)

    @classmethod
    def build_train_loader(cls, cfg):
        return build_boxcaseg_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_detection_test_loader(cfg, dataset_name, mapper=BoxCasegCropMapper(cfg, is_train=False))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return DatasetEvaluators([build_proxy_mask_evaluator(cfg, dataset_name, output_folder)])
