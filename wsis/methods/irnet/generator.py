"""
IRNet's label synthesis as a pseudo-mask generator (``tools/make_pseudo_masks.py --method irnet``): a trained
``IRNet`` (boundary + displacement) and a cue store of CAMs → instance pseudo masks with scores (no source box: the
store's instances have ``annotation_id`` null and are appended as new annotations when attached) and, in
``<out>/semantic_irnet/<image_id>.png``, IRNet's semantic pseudo labels from the same walk (0 background, class + 1).

The classes of an image are those of its cues (its tags when the cues were made with ``MODEL.CAM.CUE_CLASSES
tags``); no box of the source is read.
"""
import os

import torch

from wsis.core.semantic import write_label_png
from wsis.pseudo.network import NetworkGenerator
from wsis.pseudo.records import generated_record
from wsis.pseudo.registry import register_generator

from .synthesis import SynthesisSettings, synthesize

__all__ = ["IRNetGenerator"]


@register_generator("irnet")
class IRNetGenerator(NetworkGenerator):
    """
    A picklable generator (:class:`wsis.pseudo.network.NetworkGenerator` documents the model arguments).

    Args:
        cues (str): the cue store folder (``WSIS.IRNET.CUES``). semantic_dir (str or None): where the semantic
            PNGs go (None: not written). settings (SynthesisSettings): ``WSIS.IRNET``.
    """

    meta_architecture = "IRNet"

    def __init__(self, config_file, opts=(), weights="", cues="", semantic_dir=None, threads=1, device="cpu",
                 config_keys=None):
        from wsis.data.cue_store import CueStore

        super().__init__(config_file, opts, weights, threads=threads, device=device, config_keys=config_keys)
        if not cues:
            raise ValueError("--method irnet needs WSIS.IRNET.CUES: a cue store folder (tools/make_cues.py)")
        self.cues = CueStore(cues)
        self.settings = SynthesisSettings.from_config(self.cfg)
        self.semantic_dir = semantic_dir
        self.params = {**self.network_params, **self.settings.to_dict(), "cues": os.path.abspath(cues),
                       "cue_method": self.cues.provenance.get("method"), "flip": bool(self.cfg.MODEL.IRNET.FLIP)}
        from wsis.data.pseudo_store import source_hash_of_file

        self.provenance_extra = {"cues": os.path.abspath(cues),
                                 "cues_sha256": source_hash_of_file(os.path.join(cues, "cues.json")),
                                 "checkpoint": self.weights, "checkpoint_sha256": self.weights_sha256}

    @staticmethod
    def default_config_keys(cfg):
        from .config import add_irnet_config

        add_irnet_config(NetworkGenerator.default_config_keys(cfg))
        return cfg

    @classmethod
    def from_config(cls, cfg, metadata=None):
        """From the IRNet model's config (``MODEL.WEIGHTS``, ``MODEL.DEVICE``, ``WSIS.IRNET``); ``metadata``: the
        job's ``config_file``, ``opts``, ``config_keys`` and ``out_dir`` (the semantic PNGs go under it)."""
        metadata = metadata or {}
        if not metadata.get("config_file"):
            raise ValueError("--method irnet needs --config-file: the trained IRNet's config")
        if not cfg.MODEL.WEIGHTS:
            raise ValueError("--method irnet needs MODEL.WEIGHTS: the trained IRNet's checkpoint")
        out = metadata.get("out_dir")
        semantic_dir = os.path.join(out, "semantic_irnet") if out and not out.endswith(".json") else None
        return cls(metadata["config_file"], list(metadata.get("opts", ())), cfg.MODEL.WEIGHTS, cues=cfg.WSIS.IRNET.CUES,
                   semantic_dir=semantic_dir, device=cfg.MODEL.DEVICE, config_keys=metadata.get("config_keys"))

    def register_model(self):
        import wsis.methods.irnet.meta_arch  # noqa: F401  (registers IRNet)

    def __call__(self, dataset_dict):
        image_id = dataset_dict["image_id"]
        if image_id not in self.cues:
            raise KeyError(f"no cues for this image in {self.cues.out_dir}")
        entry = self.cues.entries[image_id]
        model = self.model()
        if int(entry["stride"]) != model.stride:
            raise ValueError(f"the cues are at stride {entry['stride']} but IRNet's outputs at {model.stride}")
        image = self.image_tensor(dataset_dict)
        h, w = image.shape[-2:]
        classes, cams = self.cues[image_id]
        boundary, displacement = model.outputs(image)
        out = synthesize(torch.from_numpy(cams), classes.tolist(), boundary, displacement, model.stride, h, w,
                         self.settings)
        if self.semantic_dir:
            os.makedirs(self.semantic_dir, exist_ok=True)
            write_label_png(out["semantic"], os.path.join(self.semantic_dir, f"{image_id}.png"))
        return generated_record(dataset_dict, out["instances"])
