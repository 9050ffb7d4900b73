"""
CCGR's pseudo instance labels as a pseudo-mask generator (``tools/make_pseudo_masks.py --method ccgr``): the MIL
branch's boxes of each image (``WSIS.CCGR.BOXES``, its predictions on the training images), refined on the
segmentation branch's class maps and cropped from its arg max (:func:`~.labels.ccgr_instances`). The generator runs
the segmentation branch (any detectron2 semantic segmentor: ``--config-file`` and ``MODEL.WEIGHTS`` are its); the
store's instances have no source annotation (``annotation_id`` null, appended as annotations when attached), so the
training set needs only tags.
"""
import os
from dataclasses import asdict

import numpy as np

from wsis.core.config import node_to_kwargs
from wsis.pseudo.network import NetworkGenerator, semantic_probs
from wsis.pseudo.records import generated_record
from wsis.pseudo.registry import register_generator

from .labels import ccgr_instances
from .refine import CCGRParams

__all__ = ["CCGRGenerator"]


@register_generator("ccgr")
class CCGRGenerator(NetworkGenerator):
    """
    A picklable generator (:class:`wsis.pseudo.network.NetworkGenerator` documents the model arguments).

    Args:
        boxes (dict): image id → the MIL branch's predictions (:func:`wsis.data.predictions.read_predictions`,
            contiguous classes). refine (CCGRParams): ``MODEL.CCGR.REFINE``. score_thresh (float): least box score.
        bags (dict or None): image id → bags with ``peaks`` (:func:`~.bag_file.read_bag_file`): a box stops before
            holding a second peak of its class; None: no stop.
    """

    def __init__(self, config_file, opts=(), weights="", boxes=None, refine=CCGRParams(), score_thresh=0.0,
                 bags=None, threads=1, device="cpu", config_keys=None, provenance=None):
        super().__init__(config_file, opts, weights, threads=threads, device=device, config_keys=config_keys)
        self.boxes, self.refine, self.score_thresh, self.bags = boxes or {}, refine, float(score_thresh), bags
        self.params = {**self.network_params, **asdict(refine), "score_thresh": self.score_thresh,
                       "stop_at_peaks": bags is not None, **(provenance or {})}

    @staticmethod
    def default_config_keys(cfg):
        """Data, evaluation, CCGR's keys and ``MODEL.PSP_HEAD`` (the shipped branch's head); the command line passes
        ``add_wsis_config`` instead, for a branch of any method."""
        from wsis.methods.panoptic.config import add_panoptic_config

        from .config import add_ccgr_config

        return add_panoptic_config(add_ccgr_config(NetworkGenerator.default_config_keys(cfg)))

    @classmethod
    def from_config(cls, cfg, metadata=None):
        """From the segmentation branch's config (``MODEL.WEIGHTS``, ``MODEL.DEVICE``) with ``WSIS.CCGR.BOXES``,
        ``WSIS.CCGR.BAGS`` (peaks) and ``MODEL.CCGR``; ``metadata``: the job's ``config_file``, ``opts``,
        ``config_keys`` and the dataset's ``thing_dataset_id_to_contiguous_id``."""
        from wsis.data.predictions import read_predictions
        from wsis.data.pseudo_store.format import source_hash_of_file

        from .bag_file import read_bag_files

        metadata = metadata or {}
        if not metadata.get("config_file"):
            raise ValueError("--method ccgr needs --config-file: the trained segmentation branch's config")
        if not cfg.MODEL.WEIGHTS:
            raise ValueError("--method ccgr needs MODEL.WEIGHTS: the trained segmentation branch's checkpoint")
        if not cfg.WSIS.CCGR.BOXES:
            raise ValueError("--method ccgr needs WSIS.CCGR.BOXES: the MIL branch's predictions on these images "
                             "(tools/infer_train_set.py)")
        boxes = read_predictions(cfg.WSIS.CCGR.BOXES, metadata.get("thing_dataset_id_to_contiguous_id"))
        bags = read_bag_files(cfg.WSIS.CCGR.BAGS) if cfg.MODEL.CCGR.STOP_AT_PEAKS and cfg.WSIS.CCGR.BAGS else None
        provenance = {"boxes": os.path.abspath(cfg.WSIS.CCGR.BOXES),
                      "boxes_sha256": source_hash_of_file(cfg.WSIS.CCGR.BOXES),
                      "bags": [os.path.abspath(b) for b in cfg.WSIS.CCGR.BAGS] if bags is not None else []}
        refine = CCGRParams(**node_to_kwargs(cfg.MODEL.CCGR.REFINE))
        return cls(metadata["config_file"], list(metadata.get("opts", ())), cfg.MODEL.WEIGHTS, boxes=boxes,
                   refine=refine, score_thresh=cfg.WSIS.CCGR.BOX_SCORE_THRESH, bags=bags, device=cfg.MODEL.DEVICE,
                   config_keys=metadata.get("config_keys"), provenance=provenance)

    def register_model(self):
        """Nothing: the segmentation branch may be any semantic segmentor (another method's head, e.g.
        ``PSPSemSegHead``, or the user's); its parts are registered by whoever imported ``wsis.modeling`` (or their
        own modules) before, as ``tools/make_pseudo_masks.py`` does."""

    def __call__(self, dataset_dict):
        image_id = dataset_dict["image_id"]
        preds = [r for r in self.boxes.get(image_id, ()) if r["score"] >= self.score_thresh]
        if not preds:
            return generated_record(dataset_dict, [])
        image = self.image_tensor(dataset_dict).permute(1, 2, 0).numpy()
        probs = semantic_probs(self.model(), self.cfg, image)
        peaks = peak_classes = None
        if self.bags is not None:
            b = self.bags.get(image_id)
            peaks = np.zeros((0, 2), np.float32) if b is None else b["peaks"]
            peak_classes = np.zeros(0, np.int64) if b is None else b["bag_labels"]
        out = ccgr_instances(probs, [r["box"] for r in preds], [r["category_id"] for r in preds],
                             [r["score"] for r in preds], self.refine, peaks, peak_classes)
        return generated_record(dataset_dict, out)
