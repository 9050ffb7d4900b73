"""Atomic file writes shared by every long job: a reader never sees a half-written file, a kill leaves no debris."""
import contextlib
import hashlib
import json
import os
import tempfile

__all__ = ["atomic_open", "atomic_symlink", "atomic_write_json", "atomic_write_png", "sha256_file"]


def _fsync_folder(folder):
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_open(path, mode="w"):
    """
    Open a temporary file next to ``path`` for writing (``mode`` "w" or "wb"); on a clean exit it is flushed,
    fsync'ed, given the permissions of a plain new file (0666 minus the umask) and renamed onto ``path``; on an
    exception it is removed and ``path`` is left as it was.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes only ('w' or 'wb'), got mode {mode!r}")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


def atomic_write_json(obj, path, **kwargs):
    """Write ``obj`` as json to ``path`` atomically (:func:`atomic_open`); ``kwargs`` go to ``json.dump``."""
    with atomic_open(path) as f:
        json.dump(obj, f, **kwargs)


def atomic_write_png(array, path):
    """
    Write an (H, W) or (H, W, 3) uint8 array (OpenCV's BGR order) as a PNG to ``path`` atomically.

    Raises:
        OSError: naming ``path`` if PNG encoding fails.
    """
    import cv2  # not at import time: most users of this module write json only

    try:
        ok, buf = cv2.imencode(".png", array)
    except cv2.error as e:
        raise OSError(f"cannot encode {path} as PNG: {e}") from e
    if not ok:
        raise OSError(f"cannot encode {path} as PNG")
    with atomic_open(path, "wb") as f:
        f.write(buf.tobytes())


def atomic_symlink(target, path):
    """
    Make ``path`` a symbolic link to ``target`` atomically: a link made under a temporary name next to ``path`` is
    renamed onto it, so ``path`` is always either what it was or the new link (an existing file or link is replaced).
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    if os.path.lexists(tmp):
        os.remove(tmp)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.remove(tmp)
        raise


def sha256_file(path):
    """Hex sha256 of the bytes of the file ``path`` (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
