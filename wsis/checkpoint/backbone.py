"""
A trained network's backbone as initial weights for another architecture, in the form Detectron2's model zoo gives
its ImageNet backbones (``R-50.pkl``): a pickle ``{"model": {name: ndarray}, "__author__": ...,
"matching_heuristics": True}`` whose names carry no ``backbone.`` prefix. ``DetectionCheckpointer`` loads such a file
with ``align_and_update_state_dicts``, which matches each name to the model parameter it is a suffix of, so the same
file initialises a plain ResNet (``backbone.res2...``) and the bottom-up path of an FPN (``backbone.bottom_up.res2...``)
alike. This is what stands in for ImageNet weights where none can be downloaded: the CAM classifier, trained on the
same image tags, gives the segmentation branch of CCGR its stem and first stages (projects/CCGR/README.md).

The source's description (:mod:`wsis.checkpoint.description`) travels under ``"wsis"``, so a model trained from the
file still says where its initial weights came from. Detectron2-free.
"""
import os
import pickle

import torch

from wsis.core.io import atomic_open

from .description import KEY, description_of

__all__ = ["BackboneExportError", "backbone_state", "export_backbone"]

#: the prefixes removed from the source's names, outermost first: the meta-architecture's ``backbone`` and FPN's
#: ``bottom_up`` (the ResNet inside it)
PREFIXES = ("backbone.", "bottom_up.")


class BackboneExportError(ValueError):
    """A checkpoint that holds no backbone, or a file that is no checkpoint."""


def backbone_state(state):
    """
    The backbone's entries of a model state dict, named as a bare backbone names them.

    Args:
        state (dict[str, Tensor]): a model's ``state_dict`` (names such as ``backbone.res2.0.conv1.weight``,
            ``backbone.bottom_up.stem.conv1.weight``, ``roi_heads...``).

    Returns:
        dict[str, numpy.ndarray]: the ``backbone.*`` entries with the prefixes of :data:`PREFIXES` removed
        (``res2.0.conv1.weight``, ``stem.conv1.weight``; an FPN's own layers keep their names: ``fpn_lateral2.weight``),
        as float arrays; BatchNorm's ``num_batches_tracked`` counters are dropped (the model zoo's files have none).
    """
    out = {}
    for name, value in state.items():
        if not name.startswith(PREFIXES[0]) or name.endswith("num_batches_tracked"):
            continue
        for prefix in PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
        out[name] = value.detach().cpu().numpy()
    return out


def export_backbone(src, dst):
    """
    Write the backbone of checkpoint ``src`` to ``dst`` (a ``.pkl``) for ``MODEL.WEIGHTS``; atomically.

    Args:
        src (str): a Detectron2 / wsis checkpoint (``{"model": state_dict, ...}``) or a bare state dict (``.pth``).
        dst (str): the output file; must end in ``.pkl`` (Detectron2 takes ``matching_heuristics`` from the contents
            of a ``.pkl`` only).

    Returns:
        int: the number of arrays written.

    Raises:
        BackboneExportError: ``src`` cannot be read as a checkpoint, or holds no ``backbone.*`` entry; ``dst`` does
            not end in ``.pkl``.
    """
    if not dst.endswith(".pkl"):
        raise BackboneExportError(f"{dst}: the output must end in .pkl (detectron2 takes the name-matching flag "
                                  "from a .pkl's contents; a .pth would need '?matching_heuristics=True' on its path)")
    try:
        checkpoint = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as e:  # a missing file, a file that is no checkpoint
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""  # torch's messages run to many lines
        raise BackboneExportError(f"{src}: not a readable torch checkpoint ({type(e).__name__}: {first})") from None
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    weights = backbone_state(state) if isinstance(state, dict) else {}
    if not weights:
        raise BackboneExportError(f"{src}: no backbone.* weights in this checkpoint")
    data = {"model": weights, "__author__": f"wsis export_backbone of {os.path.abspath(src)}",
            "matching_heuristics": True}
    description = description_of(checkpoint)  # the checkpoint is loaded already: no second torch.load
    if description is not None:
        data[KEY] = description
    with atomic_open(dst, "wb") as f:
        pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
    return len(weights)
