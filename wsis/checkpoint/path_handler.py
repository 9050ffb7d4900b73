"""
``wsis://`` paths for checkpoints, as Detectron2 resolves ``detectron2://``: ``MODEL.WEIGHTS
wsis://BBTP/bbtp_R_101_FPN_voc_aug/model_final.pth`` names the trained weights of a shipped config
(:func:`wsis.checkpoint.catalog.checkpoint_name`).

Where the files come from: the folder or mirror URL in the environment variable ``WSIS_MODEL_ZOO`` when it is set
(``/models`` or ``file:///models`` → ``/models/BBTP/bbtp_R_101_FPN_voc_aug/model_final.pth``; ``https://mirror/x/``
→ downloaded once into iopath's cache), else :data:`MODEL_ZOO_URL` for the checkpoints in :data:`PUBLISHED`.
A name that is not a shipped config fails with :class:`ModelZooError` at once, before any file is looked for.
Detectron2-free: the handler is an iopath ``PathHandler``; :func:`register_wsis_handler` adds it to fvcore's
``PathManager`` and, where detectron2 is installed, to detectron2's (the one ``DetectionCheckpointer`` reads with).
"""
import os

from iopath.common.file_io import PathHandler

from wsis.core import has_detectron2

from .catalog import ModelZooError, config_of_checkpoint

__all__ = ["ENV", "MODEL_ZOO_URL", "PUBLISHED", "WSISHandler", "resolve", "register_wsis_handler"]

ENV = "WSIS_MODEL_ZOO"
PREFIX = "wsis://"
#: Where released checkpoints are hosted, ``<MODEL_ZOO_URL><name>``.
MODEL_ZOO_URL = "https://github.com/wsis/wsis/releases/download/model-zoo/"
#: The model-zoo paths published at MODEL_ZOO_URL. None yet: MODEL_ZOO.md says what was trained, and how.
PUBLISHED = frozenset()


def resolve(path):
    """
    The local file or URL that ``wsis://<Project>/<config>/<file>`` stands for (module docstring).

    Raises:
        ModelZooError: not a ``wsis://`` path, not a shipped config, or not published and no ``WSIS_MODEL_ZOO``.
    """
    if not str(path).startswith(PREFIX):
        raise ModelZooError(f"{path!r} is not a {PREFIX} path")
    name = str(path)[len(PREFIX):]
    config = config_of_checkpoint(name)
    base = os.environ.get(ENV, "").strip()
    if not base:
        if name not in PUBLISHED:
            model = name.rpartition("/")[0]
            raise ModelZooError(
                f"{path}: no checkpoint of {model} is published (MODEL_ZOO.md); train it with tools/train_net.py "
                f"--config-file {config}, or set {ENV} to a folder or mirror URL that holds {name}")
        base = MODEL_ZOO_URL
    if base.startswith("file://"):
        base = base[len("file://"):]
    elif "://" in base:
        return base.rstrip("/") + "/" + name
    return os.path.join(os.path.expanduser(base), *name.split("/"))


class WSISHandler(PathHandler):
    """Resolves ``wsis://`` (module docstring); URLs are fetched by the ``PathManager`` it is registered with."""

    def __init__(self, path_manager):
        super().__init__()
        self._path_manager = path_manager

    def _get_supported_prefixes(self):
        return [PREFIX]

    def _get_local_path(self, path, force=False, **kwargs):
        target = resolve(path)
        if "://" in target:
            return self._path_manager.get_local_path(target, force=force, **kwargs)
        if not os.path.isfile(target):
            raise FileNotFoundError(f"{path}: {target} does not exist ({ENV}={os.environ.get(ENV)!r})")
        return target

    def _open(self, path, mode="r", buffering=-1, **kwargs):
        return self._path_manager.open(self._get_local_path(path), mode, buffering=buffering, **kwargs)

    def _exists(self, path, **kwargs):
        target = resolve(path)
        return self._path_manager.exists(target) if "://" in target else os.path.exists(target)

    def _isfile(self, path, **kwargs):
        target = resolve(path)
        return self._path_manager.isfile(target) if "://" in target else os.path.isfile(target)


def register_wsis_handler():
    """Add a :class:`WSISHandler` to fvcore's and (if installed) detectron2's ``PathManager``; idempotent."""
    from fvcore.common.file_io import PathManager as fvcore_path_manager

    managers = [fvcore_path_manager]
    if has_detectron2():
        from detectron2.utils.file_io import PathManager as d2_path_manager

        managers.append(d2_path_manager)
    for manager in managers:
        if not isinstance(getattr(manager, "_path_handlers", {}).get(PREFIX), WSISHandler):
            manager.register_handler(WSISHandler(manager))
    return managers
