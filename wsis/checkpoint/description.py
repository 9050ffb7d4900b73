"""
Checkpoints that say which weak labels made them.

:func:`training_description` collects, from a training config, what a released model must carry: the wsis version,
the full config, the training datasets, the provenance of every pseudo-label input (``WSIS.DATA.PSEUDO_MASKS``
stores: their provenance and sha256; ``WSIS.DATA.SEMANTIC_LABELS`` folders: their ``params.json``, or the store they
were written beside) and the initial weights (sha256, and their own description when wsis trained them).
``WSISTrainer`` saves it in every checkpoint under the key :data:`KEY`; :func:`read_description` gets it back and
:func:`format_description` prints it (``tools/describe_checkpoint.py``). All values are plain Python (str, numbers,
lists, dicts), so ``torch.load(weights_only=True)`` reads them. Detectron2-free.
"""
import json
import os
import pickle

import torch

from wsis import __version__
from wsis.data.pseudo_store import PseudoMaskError, load_pseudo_masks, source_hash_of_file

__all__ = ["KEY", "FORMAT", "training_description", "read_description", "description_of", "format_description",
           "weak_label_difference"]

KEY = "wsis"
FORMAT = "wsis.checkpoint_description"
FORMAT_VERSION = 1


def _pseudo_masks(path):
    entry = {"kind": "pseudo_masks", "path": os.path.abspath(path)}
    if not os.path.isfile(path):
        return dict(entry, error="missing")
    entry["sha256"] = source_hash_of_file(path)
    try:
        entry["provenance"] = load_pseudo_masks(path)[0]
    except PseudoMaskError as e:
        entry["error"] = str(e)
    return entry


def _semantic_labels(folder):
    entry = {"kind": "semantic_labels", "path": os.path.abspath(folder)}
    if not os.path.isdir(folder):
        return dict(entry, error="missing")
    entry["num_maps"] = sum(f.endswith(".png") for f in os.listdir(folder))
    params, store = os.path.join(folder, "params.json"), os.path.join(os.path.dirname(folder), "pseudo_masks.json")
    if os.path.isfile(params):
        with open(params) as f:
            entry["params"] = json.load(f)
    elif os.path.isfile(store):  # written beside a pseudo-mask store (IRNet, --save-semantic): its provenance
        try:
            entry["provenance"] = load_pseudo_masks(store)[0]
        except PseudoMaskError as e:
            entry["error"] = str(e)
    return entry


def _init_weights(weights):
    if not weights:
        return None
    entry = {"path": weights}
    if os.path.isfile(weights):
        entry["path"] = os.path.abspath(weights)
        entry["sha256"] = source_hash_of_file(weights)
        entry["description"] = read_description(weights)
    return entry


def training_description(cfg, datasets=None):
    """
    The description saved in a checkpoint trained with ``cfg`` (module docstring).

    Args:
        cfg (CfgNode): the training config (after ``add_wsis_config``).
        datasets (dict or None): ``{"train": [...], "test": [...]}``, one dict per dataset (name and what its
            registration knows: json file, image root); default: the names of ``DATASETS.TRAIN`` / ``TEST``.

    Returns:
        dict: plain values only.
    """
    data = cfg.WSIS.DATA if "WSIS" in cfg and "DATA" in cfg.WSIS else None
    weak = [_pseudo_masks(p) for p in (data.PSEUDO_MASKS if data else ())]
    weak += [_semantic_labels(p) for p in (data.SEMANTIC_LABELS if data else ())]
    if datasets is None:
        datasets = {"train": [{"name": n} for n in cfg.DATASETS.TRAIN],
                    "test": [{"name": n} for n in cfg.DATASETS.TEST]}
    out = {"format": FORMAT, "format_version": FORMAT_VERSION, "wsis_version": __version__,
           "meta_architecture": cfg.MODEL.META_ARCHITECTURE, "datasets": datasets, "weak_labels": weak,
           "init_weights": _init_weights(cfg.MODEL.WEIGHTS), "config": cfg.dump()}
    return json.loads(json.dumps(out))


def read_description(path):
    """The description in checkpoint ``path`` (a local ``.pth``, or a ``.pkl`` backbone written by
    :func:`wsis.checkpoint.backbone.export_backbone`: its source's), or None: not written by a describing wsis."""
    if str(path).endswith(".pkl"):  # Detectron2's model-zoo pickles; only wsis's backbone exports carry one
        try:
            with open(path, "rb") as f:
                checkpoint = pickle.load(f, encoding="latin1")
        except Exception:  # not a pickle: Detectron2 reports it when it loads the weights; it has no description
            return None
    elif str(path).endswith(".pth"):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    else:
        return None
    return description_of(checkpoint)


def description_of(checkpoint):
    """The description in a loaded checkpoint (the object ``torch.load`` / ``pickle.load`` returned), or None."""
    entry = checkpoint.get(KEY) if isinstance(checkpoint, dict) else None
    return entry if isinstance(entry, dict) and entry.get("format") == FORMAT else None


def weak_label_difference(old, new):
    """Which weak-label inputs of description ``new`` differ from ``old``'s (by path and sha256 / provenance)."""
    def key(entries):
        return {e["path"]: (e.get("sha256"), e.get("provenance"), e.get("params")) for e in entries}

    a, b = key(old.get("weak_labels", ())), key(new.get("weak_labels", ()))
    return sorted(p for p in set(a) | set(b) if a.get(p) != b.get(p))


def _provenance_line(p):
    params = json.dumps(p.get("params", {}), sort_keys=True)
    return (f"method {p.get('method')}, wsis {p.get('wsis_version')}, source {p.get('source')} "
            f"(sha256 {str(p.get('source_hash'))[:12]}), params {params}")


def format_description(desc, with_config=False):
    """A human-readable summary of a description (its config too with ``with_config``)."""
    lines = [f"wsis {desc['wsis_version']}, {desc['meta_architecture']}"]
    for split in ("train", "test"):
        for d in desc["datasets"].get(split, ()):
            extra = ", ".join(f"{k} {v}" for k, v in sorted(d.items()) if k != "name")
            lines.append(f"{split} dataset: {d['name']}" + (f" ({extra})" if extra else ""))
    if not desc["weak_labels"]:
        lines.append("weak labels: none beyond the datasets' own annotations")
    for e in desc["weak_labels"]:
        head = f"{e['kind']}: {e['path']}"
        if "error" in e:
            lines.append(f"{head} [{e['error']} when training started]")
            continue
        if "sha256" in e:
            head += f" (sha256 {e['sha256'][:12]})"
        if "num_maps" in e:
            head += f" ({e['num_maps']} maps)"
        lines.append(head)
        if e.get("provenance"):
            lines.append("    " + _provenance_line(e["provenance"]))
        if e.get("params") is not None:
            lines.append("    params.json " + json.dumps(e["params"], sort_keys=True))
    init = desc.get("init_weights")
    if init:
        digest = f" (sha256 {init['sha256'][:12]})" if "sha256" in init else ""
        lines.append(f"initial weights: {init['path']}{digest}")
        if init.get("description"):
            inner = format_description(init["description"]).splitlines()
            lines += ["    " + s for s in inner]
    if with_config:
        lines += ["config:"] + ["    " + s for s in desc["config"].splitlines()]
    return "\n".join(lines)
