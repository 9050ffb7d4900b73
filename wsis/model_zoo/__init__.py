"""
Shipped configs and checkpoints by name, as ``detectron2.model_zoo`` serves Detectron2's:

    from wsis import model_zoo
    cfg = model_zoo.get_config("BBTP/bbtp_R_101_FPN_voc_aug.yaml", trained=True)  # MODEL.WEIGHTS wsis://...
    model = model_zoo.get("BBTP/bbtp_R_101_FPN_voc_aug.yaml", trained=True)

Names: :func:`list_configs`, MODEL_ZOO.md. Checkpoints: ``wsis://`` paths (:mod:`wsis.checkpoint.path_handler`;
the folder or mirror in ``WSIS_MODEL_ZOO``). :func:`get_config_file` and :func:`get_checkpoint_url` need no
detectron2; :func:`get_config` and :func:`get` do.
"""
from wsis.checkpoint import ModelZooError, checkpoint_name, list_configs
from wsis.checkpoint.catalog import config_path
from wsis.checkpoint.path_handler import PREFIX

__all__ = ["ModelZooError", "list_configs", "get_config_file", "get_checkpoint_url", "get_config", "get"]


def get_config_file(config_path_name):
    """The file of a shipped config, e.g. ``get_config_file("CAM/cam_R_50_coco_tiny.yaml")``."""
    return config_path(config_path_name)


def get_checkpoint_url(config_path_name):
    """The ``wsis://`` path of the trained weights of a shipped config."""
    return PREFIX + checkpoint_name(config_path_name)


def get_config(config_path_name, trained=False):
    """
    A Detectron2 config with every wsis key (``add_wsis_config``) merged from the shipped config, and every wsis
    model part registered (``import wsis.modeling``).

    Args:
        trained (bool): set ``MODEL.WEIGHTS`` to the config's trained checkpoint (:func:`get_checkpoint_url`);
            else it stays as the config says (typically ImageNet weights, or none for the from-scratch configs).
    """
    from detectron2.config import get_cfg

    import wsis.modeling  # noqa: F401  (registers every wsis part the config may name)
    from wsis.config import add_wsis_config

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(get_config_file(config_path_name))
    if trained:
        cfg.MODEL.WEIGHTS = get_checkpoint_url(config_path_name)
    return cfg


def get(config_path_name, trained=False, device=None):
    """
    The model of a shipped config, built and loaded as ``detectron2.model_zoo.get`` does: the trained checkpoint
    with ``trained=True``, else the config's own ``MODEL.WEIGHTS`` (if any).

    Args:
        device (str or None): e.g. ``"cpu"``; default ``"cuda"`` when available, else ``"cpu"``.

    Returns:
        nn.Module: in training mode, as Detectron2's ``build_model`` returns it.
    """
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    cfg = get_config(config_path_name, trained)
    cfg.MODEL.DEVICE = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(cfg)
    if cfg.MODEL.WEIGHTS:
        DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    return model
