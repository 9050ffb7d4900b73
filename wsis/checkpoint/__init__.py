"""
Checkpoints: the catalog of shipped configs and their model-zoo names, the ``wsis://`` path handler (registered on
import, as ``detectron2.checkpoint`` registers ``detectron2://``), and the description every wsis checkpoint carries
of the weak labels that trained it, and a trained backbone exported as another model's initial weights.
Detectron2-free.
"""
from .backbone import BackboneExportError, backbone_state, export_backbone
from .catalog import ModelZooError, checkpoint_name, config_of_checkpoint, config_path, list_configs
from .description import KEY, format_description, read_description, training_description, weak_label_difference
from .path_handler import ENV, MODEL_ZOO_URL, PUBLISHED, WSISHandler, register_wsis_handler, resolve

__all__ = ["BackboneExportError", "backbone_state", "export_backbone", "ModelZooError", "checkpoint_name",
           "config_of_checkpoint", "config_path", "list_configs", "KEY", "format_description", "read_description",
           "training_description", "weak_label_difference", "ENV", "MODEL_ZOO_URL", "PUBLISHED", "WSISHandler",
           "register_wsis_handler", "resolve"]

register_wsis_handler()
