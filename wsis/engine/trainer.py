"""A ``DefaultTrainer`` that trains on weak labels and evaluates with the metrics of the papers."""
from detectron2.engine import DefaultTrainer

import wsis.data.datasets  # noqa: F401  (registers builtin datasets)

from .loaders import default_output_folder, get_loaders

__all__ = ["WSISTrainer", "build_evaluators"]


def build_evaluators(cfg, dataset_name, output_folder=None):
    """The evaluators of ``cfg``'s method (:func:`wsis.engine.loaders.get_loaders`) for ``dataset_name``."""
    return get_loaders(cfg).build_evaluator(cfg, dataset_name, default_output_folder(cfg, output_folder))


class WSISTrainer(DefaultTrainer):
    """
    Detectron2's trainer whose loaders and evaluators come from the method's :data:`wsis.engine.LOADERS_REGISTRY`
    entry: weak annotations + pseudo masks (``WSIS.DATA.PSEUDO_MASKS``) read by ``WeakDatasetMapper`` and the
    papers' metrics for R-CNN-style models; mixed box/salient crops and proxy-mask quality for ``BoxCaseg``.
    The engine imports no method: ``import wsis.modeling`` first, which registers every method's model parts and
    loaders (``tools/train_net.py`` does).
    """

    @classmethod
    def build_train_loader(cls, cfg):
        return get_loaders(cfg).build_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return get_loaders(cfg).build_test_loader(cfg, dataset_name)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return build_evaluators(cfg, dataset_name, output_folder)
