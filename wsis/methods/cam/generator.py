"""
CAM / Grad-CAM cues of every image from a trained ``CAMClassifier``: the generator that ``tools/make_cues.py`` runs
into a cue store (:mod:`wsis.data.cue_store`) with :func:`wsis.pseudo.run_generator`.
"""
import torch

from wsis.pseudo.network import NetworkGenerator

__all__ = ["CueGenerator"]

CUE_CLASSES = ("tags", "predicted")


class CueGenerator(NetworkGenerator):
    """
    A picklable generator: each process builds the classifier and loads its checkpoint on its first image
    (:class:`wsis.pseudo.network.NetworkGenerator` documents the model arguments), then maps a dataset dict to a
    cue record ``{"image_id", "height", "width", "stride", "classes", "cams" (M, ceil(H / stride),
    ceil(W / stride))}`` of the image at its original size.

    Args:
        method (str): "cam" or "gradcam". classes (str): "tags" (the dict's ``image_labels``) or "predicted"
            (classes scoring above ``MODEL.CAM.SCORE_THRESHOLD``).
    """

    meta_architecture = "CAMClassifier"

    def __init__(self, config_file, opts=(), weights="", method="cam", classes="tags", threads=1, device="cpu",
                 config_keys=None):
        if classes not in CUE_CLASSES:
            raise ValueError(f"cue classes must be one of {CUE_CLASSES}, got {classes!r}")
        super().__init__(config_file, opts, weights, threads=threads, device=device, config_keys=config_keys)
        c = self.cfg.MODEL.CAM
        self.method, self.classes = method, classes
        self.stride, self.threshold = int(c.CUE_STRIDE), float(c.SCORE_THRESHOLD)
        self.params = {**self.network_params, "cue": method, "classes": classes, "scales": [float(s) for s in c.SCALES],
                       "flip": bool(c.FLIP), "stride": self.stride, "score_threshold": self.threshold}
        self.provenance_extra = {"checkpoint": self.weights, "checkpoint_sha256": self.weights_sha256}

    @staticmethod
    def default_config_keys(cfg):
        from .config import add_cam_config

        add_cam_config(NetworkGenerator.default_config_keys(cfg))
        return cfg

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

    def register_model(self):
        import wsis.methods.cam.meta_arch  # noqa: F401  (registers CAMClassifier)

    def __call__(self, dataset_dict):
        model = self.model()
        tensor = self.image_tensor(dataset_dict)
        h, w = tensor.shape[-2:]
        if self.classes == "tags":
            classes = sorted(int(c) for c in dataset_dict.get("image_labels", ()))
        else:
            with torch.no_grad():
                scores = model([{"image": tensor, "height": h, "width": w}])[0]["image_scores"]
            classes = torch.nonzero(scores > self.threshold).flatten().tolist()
        cams = model.cues(tensor, classes, method=self.method)
        return {"image_id": dataset_dict["image_id"], "height": h, "width": w, "stride": self.stride,
                "classes": classes, "cams": cams.numpy()}
