"""
BoxCaseg's stages 2 and evaluation in Detectron2 (§3.4): proxy masks of a trained :class:`wsis.modeling.BoxCaseg`
for every GT box of a dataset, and their class-agnostic quality (mIoU*, IoU@0.5/0.75) as a ``DatasetEvaluator``.
"""
import contextlib
import itertools
import json
import logging
import os

import torch
from detectron2.data import DatasetCatalog, build_detection_test_loader
from detectron2.evaluation import DatasetEvaluator, DatasetEvaluators
from detectron2.utils import comm

from wsis.data.boxcaseg_mapper import BoxCasegCropMapper, build_boxcaseg_train_loader
from wsis.evaluation.pseudo_eval import evaluate_pseudo_masks, mark_all_valid
from wsis.pseudo.proxy_masks import proxy_record

from .loaders import LOADERS_REGISTRY

__all__ = ["ProxyMaskEvaluator", "BoxCasegProxyGenerator", "BoxCasegCropLoaders", "build_proxy_mask_evaluator",
           "proxy_settings"]
logger = logging.getLogger(__name__)


def proxy_settings(cfg):
    """The proxy-mask settings of ``cfg`` (``WSIS.BOXCASEG``) as :func:`proxy_record` keyword arguments."""
    bd = cfg.WSIS.BOXCASEG
    return {"threshold": bd.PROXY_THRESHOLD, "merge": bd.MERGE, "drop_threshold": bd.DROP_THRESHOLD}


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


class ProxyMaskEvaluator(DatasetEvaluator):
    """
    Proxy masks of every non-crowd GT box of a dataset with GT masks, scored against those masks
    (:func:`wsis.evaluation.pseudo_eval.evaluate_pseudo_masks`): ``all/*`` scores every mask, dropped ones included
    (BoxCaseg's mIoU* = ``all/class_mean_iou``); ``kept/*`` scores the masks that survive the drop; ``drop_rate``.

    With ``sweep_thresholds``, every mask is also made at each of those binarisation thresholds: ``sweep/<t>/*``
    scores them (all masks) and ``best_threshold`` is the one with the best ``mean_iou``. Run on the salient training
    images (their masks are supervision), it chooses ``WSIS.BOXCASEG.PROXY_THRESHOLD`` for a model whose maps are
    less peaked or more peaked than the paper's, without looking at any box image's mask.
    """

    def __init__(self, dataset_name, threshold=0.5, merge=True, drop_threshold=0.95, output_dir=None,
                 sweep_thresholds=()):
        self.dataset_name = dataset_name
        self.settings = {"threshold": threshold, "merge": merge, "drop_threshold": drop_threshold}
        self.sweep_thresholds = tuple(float(t) for t in sweep_thresholds)
        if any(not 0.0 <= t < 1.0 for t in self.sweep_thresholds):
            raise ValueError(f"sweep thresholds must lie in [0, 1), got {self.sweep_thresholds}")
        self.output_dir = output_dir
        self.reset()

    def reset(self):
        self.records = {}
        self.sweep_records = {t: {} for t in self.sweep_thresholds}

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            probs = list(out["proxy_probs"].float().cpu().numpy())
            self.records[inp["image_id"]] = proxy_record(inp, inp["annotations"], probs, **self.settings)
            for t, records in self.sweep_records.items():
                records[inp["image_id"]] = proxy_record(inp, inp["annotations"], probs, **{**self.settings,
                                                                                            "threshold": t})

    def evaluate(self):
        """The figures of all processes' records, on every process (an all-gather, as wsis's other evaluators)."""
        parts = comm.all_gather((self.records, self.sweep_records)) if comm.get_world_size() > 1 else \
            [(self.records, self.sweep_records)]
        records = dict(itertools.chain.from_iterable(p[0].items() for p in parts))
        gt = DatasetCatalog.get(self.dataset_name)
        if not any("segmentation" in a for d in gt for a in d["annotations"]):
            raise ValueError(f"{self.dataset_name} has no GT masks to score proxy masks against; register it with "
                             "supervision='mask'")
        res = {}
        for prefix, recs in (("all", mark_all_valid(records)), ("kept", records)):
            m = evaluate_pseudo_masks(recs, gt)
            res.update({f"{prefix}/{k}": m[k] for k in ("mean_iou", "class_mean_iou", "iou@0.5", "iou@0.75")})
        for t in self.sweep_thresholds:
            m = evaluate_pseudo_masks(mark_all_valid(dict(itertools.chain.from_iterable(p[1][t].items()
                                                                                      for p in parts))), gt)
            res.update({f"sweep/{t:g}/{k}": m[k] for k in ("mean_iou", "class_mean_iou", "iou@0.5", "iou@0.75")})
        if self.sweep_thresholds:
            res["best_threshold"] = max(self.sweep_thresholds, key=lambda t: res[f"sweep/{t:g}/mean_iou"])
        n = sum(len(r["instances"]) for r in records.values())
        res["num_instances"] = n
        res["drop_rate"] = sum(not i["valid"] for r in records.values() for i in r["instances"]) / max(n, 1)
        if self.output_dir and comm.is_main_process():
            os.makedirs(self.output_dir, exist_ok=True)
            with open(os.path.join(self.output_dir, "proxy_mask_quality.json"), "w") as f:
                json.dump(res, f, indent=1)
        return {"proxy_masks": res}


class BoxCasegProxyGenerator:
    """
    A picklable pseudo-mask generator (:func:`wsis.pseudo.run_generator`) running a trained BoxCaseg model: each
    process builds the model from ``config_file`` + ``opts`` and loads ``weights`` on its first image.

    Args:
        config_file (str), opts (list[str]): the model's config and overrides. weights (str): checkpoint.
        threads (int): torch threads per process. Keep 1 and parallelise with the runner's workers: the thread
            count changes the order of float sums, so masks could differ at the threshold between runs with
            different thread counts; it is recorded in ``params`` (the store's provenance).
    """

    def __init__(self, config_file, opts=(), weights="", threads=1, device="cpu"):
        from detectron2.utils.file_io import PathManager

        from wsis.data.pseudo_store import source_hash_of_file

        cfg = self._cfg(config_file, list(opts), weights, device)
        self.config_file, self.opts = config_file, list(opts)
        # a local file by its absolute path; a detectron2:// (or any iopath) URL as given, fetched once here
        local = os.path.isfile(weights)
        self.weights = os.path.abspath(weights) if local else weights
        try:
            local_copy = weights if local else PathManager.get_local_path(weights)
        except Exception as e:
            raise FileNotFoundError(f"--weights {weights}: cannot open this checkpoint ({e})") from None
        if not os.path.isfile(local_copy):
            raise FileNotFoundError(f"--weights {weights}: no such checkpoint ({local_copy})")
        self.threads, self.device = int(threads), device
        self.params = {"config": os.path.abspath(config_file), "opts": list(opts), "weights": self.weights,
                       "weights_sha256": source_hash_of_file(local_copy), **proxy_settings(cfg),
                       "crop_size": cfg.WSIS.BOXCASEG.PROXY_CROP_SIZE, "alpha": cfg.MODEL.BOXCASEG.ALPHA,
                       "heads": cfg.MODEL.BOXCASEG.HEADS, "threads": int(threads)}
        self._model = None

    @staticmethod
    def _cfg(config_file, opts, weights, device):
        from detectron2.config import get_cfg

        from wsis.config import add_wsis_config

        cfg = add_wsis_config(get_cfg())
        cfg.merge_from_file(config_file)
        cfg.merge_from_list(list(opts) + ["MODEL.WEIGHTS", weights, "MODEL.DEVICE", device])
        if cfg.MODEL.META_ARCHITECTURE != "BoxCaseg":
            raise ValueError(f"{config_file}: MODEL.META_ARCHITECTURE is {cfg.MODEL.META_ARCHITECTURE}, not BoxCaseg")
        return cfg

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("_model", "_mapper")}

    def __setstate__(self, state):
        self.__dict__.update(state, _model=None)

    def _load(self):
        from detectron2.checkpoint import DetectionCheckpointer
        from detectron2.modeling import build_model

        from wsis.data.boxcaseg_mapper import BoxCasegCropMapper

        cfg = self._cfg(self.config_file, self.opts, self.weights, self.device)
        model = build_model(cfg)
        DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
        self._model, self._mapper, self._settings = model.eval(), BoxCasegCropMapper(cfg, False), proxy_settings(cfg)

    @contextlib.contextmanager
    def process_context(self):
        """``threads`` torch threads while :func:`wsis.pseudo.run_generator` runs this; the previous count after."""
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def __call__(self, dataset_dict):
        if self._model is None:
            self._load()
        inputs = self._mapper(dataset_dict)
        probs = self._model([inputs])[0]["proxy_probs"].float().cpu().numpy()
        return proxy_record(inputs, inputs["annotations"], list(probs), **self._settings)
