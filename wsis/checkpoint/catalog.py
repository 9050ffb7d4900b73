"""
The configs shipped with wsis, by the names :mod:`wsis.model_zoo` takes, and the checkpoint name of each.

A name is a project's config, ``"<Project>/<file>.yaml"`` (``projects/<Project>/configs/<file>.yaml`` in a source
checkout), or a shared one, ``"Base-WSIS-RCNN-FPN.yaml"`` or ``"quick_schedules/<file>.yaml"`` (``configs/``). An
installed wsis carries both folders as package data under ``wsis/model_zoo/configs/`` in the checkout's layout
(``setup.py`` mirrors them), so relative ``_BASE_`` paths resolve in either place. Detectron2-free.
"""
import os

__all__ = ["ModelZooError", "config_root", "list_configs", "config_path", "checkpoint_name", "config_of_checkpoint"]

#: The package-data mirror of an installed wsis (made by setup.py), and the root of a source checkout.
PACKAGE_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "model_zoo", "configs")
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED, PROJECTS = "configs", "projects"
CHECKPOINT_FILE = "model_final.pth"


class ModelZooError(ValueError):
    """An unknown config or checkpoint name, or configs that are not installed; the message says which."""


def config_root():
    """The folder holding ``configs/`` and ``projects/<P>/configs/``: the installed mirror, else the checkout."""
    for root in (PACKAGE_ROOT, SOURCE_ROOT):
        if os.path.isdir(os.path.join(root, SHARED)) and os.path.isdir(os.path.join(root, PROJECTS)):
            return root
    raise ModelZooError(f"wsis's configs are neither installed ({PACKAGE_ROOT}) nor in a source checkout "
                        f"({SOURCE_ROOT}); reinstall wsis (pip install .)")


def _projects(root):
    folder = os.path.join(root, PROJECTS)
    return sorted(p for p in os.listdir(folder) if os.path.isdir(os.path.join(folder, p, "configs")))


def list_configs():
    """Every shipped config name, sorted: the shared ones, then ``"<Project>/<file>.yaml"``."""
    root = config_root()
    names = []
    shared = os.path.join(root, SHARED)
    for folder, _, files in os.walk(shared, followlinks=True):
        rel = os.path.relpath(folder, shared)
        names += [f if rel == "." else f"{rel}/{f}".replace(os.sep, "/") for f in files if f.endswith(".yaml")]
    for project in _projects(root):
        folder = os.path.join(root, PROJECTS, project, "configs")
        names += [f"{project}/{f}" for f in os.listdir(folder) if f.endswith(".yaml")]
    return sorted(names)


def config_path(name):
    """The file of config ``name`` (e.g. ``"BBTP/bbtp_R_101_FPN_voc_aug.yaml"``); :class:`ModelZooError` if unknown."""
    root = config_root()
    parts = str(name).replace("\\", "/").split("/")
    if not str(name).endswith(".yaml") or any(p in ("", ".", "..") for p in parts):
        raise ModelZooError(f"{name!r} is not a config name: expected '<Project>/<file>.yaml' or a shared "
                            "'quick_schedules/<file>.yaml' (wsis.model_zoo.list_configs())")
    if len(parts) > 1 and parts[0] in _projects(root):
        path = os.path.join(root, PROJECTS, parts[0], "configs", *parts[1:])
    else:
        path = os.path.join(root, SHARED, *parts)
    if not os.path.isfile(path):
        projects = ", ".join(_projects(root))
        raise ModelZooError(f"{name!r} is not a wsis config (projects: {projects}; every name: "
                            "wsis.model_zoo.list_configs(), MODEL_ZOO.md)")
    return path


def checkpoint_name(name):
    """The model-zoo path of config ``name``'s trained weights: ``"BBTP/bbtp_R_101_FPN_voc_aug/model_final.pth"``."""
    config_path(name)
    return f"{name[:-len('.yaml')]}/{CHECKPOINT_FILE}"


def config_of_checkpoint(path):
    """The config name of a model-zoo path ``"<config without .yaml>/<file>"``; :class:`ModelZooError` if none."""
    model, _, file = str(path).rpartition("/")
    if not model or not file:
        raise ModelZooError(f"{path!r} is not a model-zoo path: expected '<Project>/<config>/{CHECKPOINT_FILE}'")
    try:
        return config_path(model + ".yaml")
    except ModelZooError:
        raise ModelZooError(f"{path!r}: {model!r} is not a wsis model (no config {model}.yaml; every name: "
                            "wsis.model_zoo.list_configs(), MODEL_ZOO.md)") from None
