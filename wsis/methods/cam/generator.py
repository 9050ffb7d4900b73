"""
CAM / Grad-CAM cues of every image from a trained ``CAMClassifier``: the generator that ``tools/make_cues.py`` runs
into a cue store (:mod:`wsis.data.cue_store`) with :func:`wsis.pseudo.run_generator`.
"""
import contextlib
import os

import numpy as np
import torch

__all__ = ["CueGenerator"]

CUE_CLASSES = ("tags", "predicted")


class CueGenerator:
    """
    A picklable generator: each process builds the classifier from ``config_file`` + ``opts`` and loads ``weights``
    on its first image, then maps a dataset dict to a cue record ``{"image_id", "height", "width", "stride",
    "classes", "cams" (M, ceil(H / stride), ceil(W / stride))}`` of the image at its original size.

    Args:
        method (str): "cam" or "gradcam". classes (str): "tags" (the dict's ``image_labels``) or "predicted"
            (classes scoring above ``MODEL.CAM.SCORE_THRESHOLD``). threads (int): torch threads per process (kept 1
            by the command so that the maps do not depend on the thread count; recorded in ``params``).
    """

    def __init__(self, config_file, opts=(), weights="", method="cam", classes="tags", threads=1, device="cpu",
                 config_keys=None):
        from wsis.data.pseudo_store import source_hash_of_file

        if classes not in CUE_CLASSES:
            raise ValueError(f"cue classes must be one of {CUE_CLASSES}, got {classes!r}")
        self.config_keys = config_keys or _cam_keys
        self.config_file, self.opts, self.device = config_file, list(opts), device
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"MODEL.WEIGHTS {weights!r}: no such checkpoint")
        self.weights = os.path.abspath(weights)
        cfg = self._cfg()
        if cfg.MODEL.META_ARCHITECTURE != "CAMClassifier":
            raise ValueError(f"{config_file}: MODEL.META_ARCHITECTURE is {cfg.MODEL.META_ARCHITECTURE}, "
                             "not CAMClassifier")
        c = cfg.MODEL.CAM
        self.method, self.classes, self.threads = method, classes, int(threads)
        self.input_format = cfg.INPUT.FORMAT
        self.stride = int(c.CUE_STRIDE)
        self.params = {"config": os.path.abspath(config_file), "opts": list(opts), "weights": self.weights,
                       "weights_sha256": source_hash_of_file(self.weights), "cue": method, "classes": classes,
                       "scales": [float(s) for s in c.SCALES], "flip": bool(c.FLIP), "stride": self.stride,
                       "score_threshold": float(c.SCORE_THRESHOLD), "threads": self.threads}
        self.provenance_extra = {"checkpoint": self.weights, "checkpoint_sha256": self.params["weights_sha256"]}
        self._threshold = float(c.SCORE_THRESHOLD)
        self._model = None

    @classmethod
    def from_config(cls, cfg, method, metadata=None):
        """From the classifier's config (``MODEL.WEIGHTS``, ``MODEL.DEVICE``, ``MODEL.CAM.CUE_CLASSES``)."""
        metadata = metadata or {}
        if not metadata.get("config_file"):
            raise ValueError("cues need --config-file: the trained CAMClassifier's config")
        if not cfg.MODEL.WEIGHTS:
            raise ValueError("cues need MODEL.WEIGHTS: the trained classifier's checkpoint")
        return cls(metadata["config_file"], metadata.get("opts", ()), cfg.MODEL.WEIGHTS, method=method,
                   classes=cfg.MODEL.CAM.CUE_CLASSES, device=cfg.MODEL.DEVICE, config_keys=metadata.get("config_keys"))

    def _cfg(self):
        from detectron2.config import get_cfg

        cfg = self.config_keys(get_cfg())
        cfg.merge_from_file(self.config_file)
        cfg.merge_from_list(self.opts + ["MODEL.WEIGHTS", self.weights, "MODEL.DEVICE", self.device])
        return cfg

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_model"}

    def __setstate__(self, state):
        self.__dict__.update(state, _model=None)

    def _load(self):
        from detectron2.checkpoint import DetectionCheckpointer
        from detectron2.modeling import build_model

        import wsis.methods.cam.meta_arch  # noqa: F401  (registers CAMClassifier)

        model = build_model(self._cfg())
        DetectionCheckpointer(model).load(self.weights)
        self._model = model.eval()

    @contextlib.contextmanager
    def process_context(self):
        """``threads`` torch threads while the runner runs this; the previous count after."""
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def __call__(self, dataset_dict):
        from detectron2.data.detection_utils import read_image

        if self._model is None:
            self._load()
        image = read_image(dataset_dict["file_name"], format=self.input_format)
        h, w = image.shape[:2]
        if (h, w) != (dataset_dict["height"], dataset_dict["width"]):
            raise ValueError(f"the image is {w}x{h} but its annotation says {dataset_dict['width']}x"
                             f"{dataset_dict['height']}")
        tensor = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if self.classes == "tags":
            classes = sorted(int(c) for c in dataset_dict.get("image_labels", ()))
        else:
            with torch.no_grad():
                scores = self._model([{"image": tensor, "height": h, "width": w}])[0]["image_scores"]
            classes = torch.nonzero(scores > self._threshold).flatten().tolist()
        cams = self._model.cues(tensor, classes, method=self.method)
        return {"image_id": dataset_dict["image_id"], "height": h, "width": w, "stride": self.stride,
                "classes": classes, "cams": cams.numpy()}


def _cam_keys(cfg):
    """The keys a CAMClassifier config uses: data, evaluation and CAM's own."""
    from wsis.data.config import add_weak_data_config
    from wsis.evaluation.config import add_evaluation_config

    from .config import add_cam_config

    for add in (add_weak_data_config, add_evaluation_config, add_cam_config):
        add(cfg)
    return cfg
