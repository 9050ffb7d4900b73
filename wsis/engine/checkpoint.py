"""
The trainer's side of self-describing checkpoints (:mod:`wsis.checkpoint.description`): the description rides in
every checkpoint ``DetectionCheckpointer`` saves, as one more checkpointable under the key ``"wsis"``.
"""
import logging

import detectron2.utils.comm as comm
from detectron2.data import MetadataCatalog

from wsis.checkpoint import KEY, training_description, weak_label_difference

__all__ = ["TrainingDescription", "describe_datasets", "attach_description"]
logger = logging.getLogger("wsis.engine")

#: What a dataset's registration records about its files (Detectron2's metadata keys).
_METADATA = ("json_file", "image_root", "sem_seg_root", "panoptic_json", "panoptic_root", "evaluator_type")


def describe_datasets(names):
    """One dict per dataset name: the name and the string metadata of :data:`_METADATA` it was registered with."""
    out = []
    for name in names:
        meta = MetadataCatalog.get(name).as_dict()
        out.append(dict({"name": name}, **{k: meta[k] for k in _METADATA if isinstance(meta.get(k), str)}))
    return out


class TrainingDescription:
    """
    A checkpointable holding the description of a training run, made once when training starts (on the main
    process, the one that saves). Resuming loads the stored one into :attr:`loaded` and logs a warning when the
    weak labels are not those the checkpoint was trained on; the saved description stays the current run's.
    """

    def __init__(self, cfg):
        self.description = None
        if comm.is_main_process():  # the only process that saves: the others hash and read nothing
            datasets = {"train": describe_datasets(cfg.DATASETS.TRAIN),
                        "test": describe_datasets(cfg.DATASETS.TEST)}
            self.description = training_description(cfg, datasets)
        self.loaded = None

    def state_dict(self):
        return self.description

    def load_state_dict(self, state):
        self.loaded = state
        if isinstance(state, dict) and self.description is not None:
            changed = weak_label_difference(state, self.description)
            if changed:
                logger.warning(f"resuming from a checkpoint trained on other weak labels: {', '.join(changed)} "
                               "differ; the next checkpoints describe this run's")


def attach_description(checkpointer, cfg):
    """Make ``checkpointer`` save a :class:`TrainingDescription` of ``cfg`` with every checkpoint."""
    description = TrainingDescription(cfg)
    checkpointer.add_checkpointable(KEY, description)
    return description
