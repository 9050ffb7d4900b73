"""
The base of generators that run a trained detectron2 model (BoxCaseg's proxy masks, CAM cues): the model's config
and checkpoint, the checkpoint's hash for the store's provenance, one model per process built lazily (the generator
is pickled into the runner's workers without it), and the torch threads of each process. detectron2 is imported only
when a model is built.
"""
import contextlib
import os

import torch

__all__ = ["NetworkGenerator", "semantic_probs"]


class NetworkGenerator:
    """
    Args:
        config_file (str), opts (list[str]): the model's config and overrides. weights (str): a local checkpoint or
            any detectron2/iopath URL (fetched once here). threads (int): torch threads per process. Keep 1 and
            parallelise with the runner's workers: the thread count changes the order of float sums, so outputs
            could differ between runs with different counts; it is part of ``network_params``.
        device (str): ``MODEL.DEVICE``. config_keys (callable): adds the config keys the model needs to a
            detectron2 config (default: :meth:`default_config_keys`).

    Subclasses set :attr:`meta_architecture` and implement ``__call__``; :meth:`model` gives the loaded model.
    """

    #: tools/make_pseudo_masks.py builds the config of such a generator with detectron2's get_cfg()
    needs_detectron2_config = True
    #: the ``MODEL.META_ARCHITECTURE`` the config must name
    meta_architecture = None

    def __init__(self, config_file, opts=(), weights="", threads=1, device="cpu", config_keys=None):
        from detectron2.utils.file_io import PathManager

        from wsis.data.pseudo_store import source_hash_of_file

        self.config_keys = config_keys or self.default_config_keys
        self.config_file, self.opts, self.device = config_file, list(opts), device
        local = os.path.isfile(weights)
        self.weights = os.path.abspath(weights) if local else weights
        try:
            local_copy = weights if local else PathManager.get_local_path(weights)
        except Exception as e:
            raise FileNotFoundError(f"MODEL.WEIGHTS {weights}: cannot open this checkpoint ({e})") from None
        if not os.path.isfile(local_copy):
            raise FileNotFoundError(f"MODEL.WEIGHTS {weights}: no such checkpoint ({local_copy})")
        self.weights_sha256 = source_hash_of_file(local_copy)
        self.threads = int(threads)
        self.cfg = self.build_cfg()
        self._model = None

    @staticmethod
    def default_config_keys(cfg):
        """The keys every wsis model config may use: data and evaluation (subclasses add their method's)."""
        from wsis.data.config import add_weak_data_config
        from wsis.evaluation.config import add_evaluation_config

        add_weak_data_config(cfg)
        add_evaluation_config(cfg)
        return cfg

    @property
    def network_params(self):
        """What every such generator records in its ``params``: config, overrides, checkpoint, its hash, threads."""
        return {"config": os.path.abspath(self.config_file), "opts": list(self.opts), "weights": self.weights,
                "weights_sha256": self.weights_sha256, "threads": self.threads}

    def build_cfg(self):
        """The model's detectron2 config (``config_keys`` + file + overrides + weights + device), checked."""
        from detectron2.config import get_cfg

        cfg = self.config_keys(get_cfg())
        cfg.merge_from_file(self.config_file)
        cfg.merge_from_list(self.opts + ["MODEL.WEIGHTS", self.weights, "MODEL.DEVICE", self.device])
        if self.meta_architecture and cfg.MODEL.META_ARCHITECTURE != self.meta_architecture:
            raise ValueError(f"{self.config_file}: MODEL.META_ARCHITECTURE is {cfg.MODEL.META_ARCHITECTURE}, "
                             f"not {self.meta_architecture}")
        return cfg

    def model(self):
        """The model in eval mode, built and loaded on the first call in each process."""
        if self._model is None:
            from detectron2.checkpoint import DetectionCheckpointer
            from detectron2.modeling import build_model

            self.register_model()
            model = build_model(self.cfg)
            DetectionCheckpointer(model).load(self.cfg.MODEL.WEIGHTS)
            self._model = model.eval()
            self.on_model_loaded()
        return self._model

    def image_tensor(self, dataset_dict):
        """The dict's image as the model's input: a (3, H, W) uint8 tensor in ``INPUT.FORMAT``, its size checked
        against the dict's ``height``/``width``."""
        import numpy as np
        from detectron2.data.detection_utils import read_image

        image = read_image(dataset_dict["file_name"], format=self.cfg.INPUT.FORMAT)
        h, w = image.shape[:2]
        if (h, w) != (dataset_dict["height"], dataset_dict["width"]):
            raise ValueError(f"the image is {w}x{h} but its annotation says {dataset_dict['width']}x"
                             f"{dataset_dict['height']}")
        return torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))

    def register_model(self):
        """Import the glue that registers :attr:`meta_architecture` (each subclass its own)."""

    def on_model_loaded(self):
        """Called once per process after the model is loaded (e.g. to build a mapper from ``self.cfg``)."""

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state):
        self.__dict__.update(state, _model=None)

    @contextlib.contextmanager
    def process_context(self):
        """``threads`` torch threads while :func:`wsis.pseudo.run_generator` runs this; the previous count after."""
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


def semantic_probs(model, cfg, image):
    """
    (C, H, W) softmax of a semantic segmentor (any model whose output has ``sem_seg``) on one (H, W, 3) image in
    ``cfg.INPUT.FORMAT``, resized as at test time (``INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST``), at the image's
    size, as a float32 ndarray.
    """
    import numpy as np
    from detectron2.data import transforms as T

    h, w = image.shape[:2]
    aug = T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)
    resized = aug.get_transform(image).apply_image(image)
    tensor = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1))).float()
    with torch.no_grad():
        out = model([{"image": tensor, "height": h, "width": w}])[0]["sem_seg"]
    return torch.softmax(out.float(), 0).cpu().numpy()
