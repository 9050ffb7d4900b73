"""A ``DefaultTrainer`` that trains on weak labels and evaluates with the metrics of the papers."""
import inspect

import torch
from detectron2.engine import DefaultTrainer
from detectron2.solver import build_optimizer
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping

import wsis.data.datasets  # noqa: F401  (registers builtin datasets)

from .checkpoint import attach_description
from .loaders import default_output_folder, get_loaders

__all__ = ["WSISTrainer", "build_evaluators", "build_wsis_optimizer"]


def build_evaluators(cfg, dataset_name, output_folder=None):
    """The evaluators of ``cfg``'s method (:func:`wsis.engine.loaders.get_loaders`) for ``dataset_name``."""
    return get_loaders(cfg).build_evaluator(cfg, dataset_name, default_output_folder(cfg, output_folder))


def build_wsis_optimizer(cfg, model):
    """
    Detectron2's SGD (``build_optimizer``), with per-parameter learning-rate factors when the model has a
    ``lr_factor(name) -> float`` method (e.g. IRNet's 10× classifier in ``CAMClassifier``); the LR schedule scales
    every group alike, so the factors hold throughout training.
    """
    lr_factor = getattr(model, "lr_factor", None)
    if lr_factor is None or "lr_factor_func" not in inspect.signature(get_default_optimizer_params).parameters:
        return build_optimizer(cfg, model)
    params = get_default_optimizer_params(
        model, base_lr=cfg.SOLVER.BASE_LR, weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
        bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR, weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
        lr_factor_func=lr_factor,
    )
    return maybe_add_gradient_clipping(cfg, torch.optim.SGD(
        params, lr=cfg.SOLVER.BASE_LR, momentum=cfg.SOLVER.MOMENTUM, nesterov=cfg.SOLVER.NESTEROV,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY))


class WSISTrainer(DefaultTrainer):
    """
    Detectron2's trainer whose loaders and evaluators come from the method's :data:`wsis.engine.LOADERS_REGISTRY`
    entry: weak annotations + pseudo masks (``WSIS.DATA.PSEUDO_MASKS``) read by ``WeakDatasetMapper`` and the
    papers' metrics for R-CNN-style models; mixed box/salient crops and proxy-mask quality for ``BoxCaseg``; image
    tags and classification mAP for ``CAMClassifier``. Models with ``lr_factor(name)`` get per-parameter learning
    rates (:func:`build_wsis_optimizer`).
    The engine imports no method: ``import wsis.modeling`` first, which registers every method's model parts and
    loaders (``tools/train_net.py`` does).
    Every checkpoint it saves describes the run (wsis version, config, datasets, the provenance of each pseudo-label
    input: :mod:`wsis.engine.checkpoint`); ``tools/describe_checkpoint.py`` prints it.
    """

    def __init__(self, cfg):
        super().__init__(cfg)
        attach_description(self.checkpointer, cfg)

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_wsis_optimizer(cfg, model)

    @classmethod
    def build_train_loader(cls, cfg):
        return get_loaders(cfg).build_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return get_loaders(cfg).build_test_loader(cfg, dataset_name)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return build_evaluators(cfg, dataset_name, output_folder)
