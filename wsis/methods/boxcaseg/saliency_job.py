"""
Salient-object maps of a dataset from a trained BoxCaseg model (its fused salient head, §3.3, Eq. 3), written as
``<out>/<image_id>.png`` (uint8, 255 = salient, the image's size), the maps DSRG's background seeds read
(``WSIS.DSRG.SEEDS.BACKGROUND saliency``, §3.1). Resumable: finished maps are kept; ``params.json`` records the
checkpoint (and its sha256) and the settings, and a folder made with other ones is refused. detectron2 is imported
only when the model is built (:class:`wsis.pseudo.network.NetworkGenerator`).
"""
import logging
import os
import pickle

import numpy as np
import torch
from tqdm import tqdm

from wsis.core.semantic import write_label_png
from wsis.pseudo.label_folder import claim_label_folder, missing_maps, write_skip_report
from wsis.pseudo.network import NetworkGenerator

from .generator import BoxCasegProxyGenerator
from .saliency import saliency_input, saliency_map

__all__ = ["BoxCasegSaliency", "make_saliency_maps"]
logger = logging.getLogger(__name__)


class BoxCasegSaliency(NetworkGenerator):
    """
    A trained BoxCaseg model as a salient-object model: ``saliency(dataset_dict)`` → the (H, W) uint8 map of the
    dict's image. The whole image is resized to ``WSIS.BOXCASEG.SALIENT_RESIZE`` square (the geometry of the salient
    training images, :func:`~wsis.methods.boxcaseg.saliency.saliency_input`), ``BoxCaseg.predict_crops`` gives its
    fused probability, resized back to the image (:func:`~wsis.methods.boxcaseg.saliency.saliency_map`).

    Arguments (config, overrides, checkpoint, threads, device, config keys) and the lazily loaded model as
    :class:`wsis.pseudo.network.NetworkGenerator`; ``params`` is what ``params.json`` records.
    """

    meta_architecture = "BoxCaseg"
    default_config_keys = staticmethod(BoxCasegProxyGenerator.default_config_keys)
    register_model = BoxCasegProxyGenerator.register_model

    def __init__(self, config_file, opts=(), weights="", threads=1, device="cpu", config_keys=None):
        super().__init__(config_file, opts, weights, threads=threads, device=device, config_keys=config_keys)
        cfg = self.cfg
        self.size = int(cfg.WSIS.BOXCASEG.SALIENT_RESIZE)
        bc = cfg.MODEL.BOXCASEG
        self.params = {"method": "boxcaseg_saliency", **self.network_params, "salient_resize": self.size,
                       "input_format": cfg.INPUT.FORMAT, "heads": bc.HEADS, "alpha": bc.ALPHA, "mix": bc.MIX}

    def predict(self, image):
        """
        Args:
            image (Tensor): (3, H, W) uint8 in ``INPUT.FORMAT`` (:meth:`image_tensor`).

        Returns:
            ndarray[uint8]: (H, W) saliency map, 255 = salient.
        """
        crop = saliency_input(image.permute(1, 2, 0).numpy(), self.size)  # (s, s, 3)
        prob = self.model().predict_crops(torch.as_tensor(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None])
        return saliency_map(prob[0].float().cpu().numpy(), *image.shape[1:])

    def __call__(self, dataset_dict):
        """The (H, W) uint8 map of the dict's image (``file_name``, ``height``, ``width``)."""
        return self.predict(self.image_tensor(dataset_dict))

    def load(self):
        """Build and load the model now; a file that is no checkpoint is a ValueError naming it."""
        try:
            return self.model()
        except (RuntimeError, pickle.UnpicklingError, EOFError) as e:
            lines = str(e).strip().splitlines() or [""]
            reason = lines[0] if len(lines[0]) <= 160 else lines[0][:157] + "..."
            raise ValueError(f"MODEL.WEIGHTS {self.weights}: cannot load a model from this checkpoint "
                             f"({type(e).__name__}: {reason})") from e


def make_saliency_maps(saliency, dataset_dicts, out_dir, progress=True, overwrite=False):
    """
    Write the map of every image of ``dataset_dicts`` that has none yet into ``out_dir`` (each atomically).

    Args:
        saliency (BoxCasegSaliency): the model; its ``params`` go into ``params.json``, and a folder whose
            ``params.json`` differs is refused unless ``overwrite`` (which empties it).
        dataset_dicts (list[dict]): ``image_id``, ``file_name``, ``height``, ``width``.

    Returns:
        list[tuple]: ``(image_id, reason)`` of every image skipped by this run (unreadable, or not the size its
        annotation says), also written to ``skipped.json``.
    """
    claim_label_folder(out_dir, saliency.params, overwrite, holds="saliency maps of another checkpoint or settings")
    todo = missing_maps(out_dir, dataset_dicts)
    skipped = []
    with saliency.process_context():
        if todo:
            saliency.load()
        for d in tqdm(todo, desc="saliency maps", unit="img", disable=not progress):
            try:
                image = saliency.image_tensor(d)
            except (OSError, ValueError) as e:
                skipped.append((d["image_id"], f"{d.get('file_name')}: image id {d['image_id']}: {e}"))
                logger.warning(f"skipped {skipped[-1][1]}")
                continue
            write_label_png(saliency.predict(image), os.path.join(out_dir, f"{d['image_id']}.png"))
    write_skip_report(out_dir, skipped)
    return sorted(skipped)
