"""BoxCaseg stage 2 (§3.4) as a pseudo-mask generator: proxy masks of every box from a trained BoxCaseg model."""
import contextlib
import os

import torch

from wsis.pseudo.registry import register_generator

from .proxy_masks import drop_hint, proxy_record, proxy_settings

__all__ = ["BoxCasegProxyGenerator"]


@register_generator("boxcaseg")
class BoxCasegProxyGenerator:
    """
    A picklable pseudo-mask generator (:func:`wsis.pseudo.run_generator`) running a trained BoxCaseg model: each
    process builds the model from ``config_file`` + ``opts`` and loads ``weights`` on its first image.

    Args:
        config_file (str), opts (list[str]): the model's config and overrides. weights (str): checkpoint.
        config_keys (callable): adds the keys the config needs to a detectron2 config (default: the data,
            evaluation and BoxCaseg keys; ``tools/make_pseudo_masks.py`` passes :func:`wsis.config.add_wsis_config`).
        threads (int): torch threads per process. Keep 1 and parallelise with the runner's workers: the thread
            count changes the order of float sums, so masks could differ at the threshold between runs with
            different thread counts; it is recorded in ``params`` (the store's provenance).
    """

    #: tools/make_pseudo_masks.py builds the config of this generator with detectron2's get_cfg()
    needs_detectron2_config = True

    def __init__(self, config_file, opts=(), weights="", threads=1, device="cpu", config_keys=None):
        from detectron2.utils.file_io import PathManager

        from wsis.data.pseudo_store import source_hash_of_file

        self.config_keys = config_keys or _boxcaseg_keys
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
        settings = proxy_settings(cfg)
        self.params = {"config": os.path.abspath(config_file), "opts": list(opts), "weights": self.weights,
                       "weights_sha256": source_hash_of_file(local_copy), **settings,
                       "crop_size": cfg.WSIS.BOXCASEG.PROXY_CROP_SIZE, "alpha": cfg.MODEL.BOXCASEG.ALPHA,
                       "heads": cfg.MODEL.BOXCASEG.HEADS, "threads": int(threads)}
        self.quality_hint = drop_hint(settings)
        self._model = None

    @classmethod
    def from_config(cls, cfg, metadata=None):
        """
        From the BoxCaseg model's config ``cfg`` (``MODEL.WEIGHTS``, ``MODEL.DEVICE``, ``WSIS.BOXCASEG``); ``metadata``
        holds ``config_file`` and ``opts`` (each process rebuilds the model from them) and ``config_keys``.
        """
        metadata = metadata or {}
        if not metadata.get("config_file"):
            raise ValueError("--method boxcaseg needs --config-file: the trained BoxCaseg model's config")
        if not cfg.MODEL.WEIGHTS:
            raise ValueError("--method boxcaseg needs MODEL.WEIGHTS: the trained model's checkpoint")
        return cls(metadata["config_file"], list(metadata.get("opts", ())), cfg.MODEL.WEIGHTS, threads=1, device=cfg.MODEL.DEVICE,
                   config_keys=metadata.get("config_keys"))

    def _cfg(self, config_file, opts, weights, device):
        from detectron2.config import get_cfg

        cfg = self.config_keys(get_cfg())
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

        from wsis.methods.boxcaseg.mapper import BoxCasegCropMapper

        import wsis.methods.boxcaseg.meta_arch  # noqa: F401  (registers BoxCaseg)

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


def _boxcaseg_keys(cfg):
    """The keys a BoxCaseg model's config uses: data, evaluation and BoxCaseg's own."""
    from wsis.data.config import add_weak_data_config
    from wsis.evaluation.config import add_evaluation_config

    from .config import add_boxcaseg_config

    for add in (add_weak_data_config, add_evaluation_config, add_boxcaseg_config):
        add(cfg)
    return cfg
