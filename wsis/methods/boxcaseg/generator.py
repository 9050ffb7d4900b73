"""BoxCaseg stage 2 (§3.4) as a pseudo-mask generator: proxy masks of every box from a trained BoxCaseg model."""
from wsis.pseudo.network import NetworkGenerator
from wsis.pseudo.registry import register_generator

from .proxy_masks import drop_hint, proxy_record, proxy_settings

__all__ = ["BoxCasegProxyGenerator"]


@register_generator("boxcaseg")
class BoxCasegProxyGenerator(NetworkGenerator):
    """
    A picklable pseudo-mask generator (:func:`wsis.pseudo.run_generator`) running a trained BoxCaseg model: each
    process builds the model from ``config_file`` + ``opts`` and loads ``weights`` on its first image
    (:class:`wsis.pseudo.network.NetworkGenerator`, which documents the arguments; ``config_keys`` defaults to the
    data, evaluation and BoxCaseg keys, ``tools/make_pseudo_masks.py`` passes :func:`wsis.config.add_wsis_config`).
    """

    meta_architecture = "BoxCaseg"

    def __init__(self, config_file, opts=(), weights="", threads=1, device="cpu", config_keys=None):
        super().__init__(config_file, opts, weights, threads=threads, device=device, config_keys=config_keys)
        cfg = self.cfg
        settings = proxy_settings(cfg)
        self.params = {**self.network_params, **settings, "crop_size": cfg.WSIS.BOXCASEG.PROXY_CROP_SIZE,
                       "alpha": cfg.MODEL.BOXCASEG.ALPHA, "heads": cfg.MODEL.BOXCASEG.HEADS}
        self.quality_hint = drop_hint(settings)

    @staticmethod
    def default_config_keys(cfg):
        from .config import add_boxcaseg_config

        add_boxcaseg_config(NetworkGenerator.default_config_keys(cfg))
        return cfg

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
        return cls(metadata["config_file"], list(metadata.get("opts", ())), cfg.MODEL.WEIGHTS, threads=1,
                   device=cfg.MODEL.DEVICE, config_keys=metadata.get("config_keys"))

    def register_model(self):
        import wsis.methods.boxcaseg.meta_arch  # noqa: F401  (registers BoxCaseg)

    def on_model_loaded(self):
        from .mapper import BoxCasegCropMapper

        self._mapper, self._settings = BoxCasegCropMapper(self.cfg, False), proxy_settings(self.cfg)

    def __call__(self, dataset_dict):
        model = self.model()
        inputs = self._mapper(dataset_dict)
        probs = model([inputs])[0]["proxy_probs"].float().cpu().numpy()
        return proxy_record(inputs, inputs["annotations"], list(probs), **self._settings)
