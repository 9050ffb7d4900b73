"""The localisation-cue store's format (constants, error type, record and index-entry validation, the npz codec).

Image tags -> a classifier (CAM, Grad-CAM, IRNet's CAM...) -> **cues** (this store): per image, one max-normalised
localisation map per class present, at a stated stride -> seeds, IR labels, DSRG's region growing -> pseudo labels.
Detectron2-free: NumPy and the standard library only.

A store is a folder ``<out>/`` (``format_version`` 1)::

    cues.json                 # the index, written last and atomically
    maps/<image_id>.npz       # one per image

    cues.json = {"format": "wsis.cues", "format_version": 1,
                 "provenance": {...},            # as the pseudo-mask store's (wsis.data.pseudo_store.make_provenance):
                                                 #   method, params, wsis_version, source, source_hash; more keys
                                                 #   allowed (checkpoint, checkpoint_sha256, shard...)
                 "images": [                     # sorted by image_id, one image per line
                   {"image_id": int, "height": int, "width": int,   # the image's size in pixels
                    "stride": int,               # the maps are (h, w) = (ceil(height / stride), ceil(width / stride))
                    "classes": [int, ...],       # contiguous class ids, in the generator's order (unique, >= 0)
                    "file": "maps/<image_id>.npz",
                    "sha256": str}, ...]}        # hex digest of the npz file's bytes

    maps/<image_id>.npz = {"cams": float16 (M, h, w),     # cams[k] is the map of classes[k]; finite, >= 0
                           "classes": int64 (M,)}          # = the index's classes; M = 0: an untagged image

A record handed to :class:`~wsis.data.cue_store.CueWriter` is ``{"image_id", "height", "width", "stride",
"classes": list[int], "cams": real array (M, h, w)}``; its values are cast to float16 (about 3 significant digits,
ample for maps in [0, 1]; a value that overflows float16, > 65504, is refused).

Determinism: no timestamps anywhere. The index is compact JSON with sorted provenance keys and a fixed key order per
image; each npz is a zip written entry by entry with a fixed date (1980-01-01), fixed attributes, ``cams.npy`` then
``classes.npy``, npy format 1.0, little-endian C-order arrays, deflated. The same records therefore give the same
bytes (the same zlib assumed), whatever the order they were added in, the number of workers, or kills and resumes.

Writing is resumable like the pseudo-mask store: each finished image's npz is written atomically, then its index
entry is appended, flushed and fsync'ed as one line of the journal ``cues.json.partial.jsonl``, whose first line holds
the provenance; finalizing writes ``cues.json`` and removes the journal. One writer per store (an OS lock).
"""
import hashlib
import io
import re
import zipfile
from collections.abc import Mapping

import numpy as np

from wsis.data.store_format import _check_int, _dumps

__all__ = ["FORMAT", "FORMAT_VERSION", "INDEX_NAME", "JOURNAL_NAME", "MAPS_DIR", "CueStoreError", "cue_map_shape"]

FORMAT = "wsis.cues"
FORMAT_VERSION = 1
INDEX_NAME = "cues.json"
JOURNAL_NAME = INDEX_NAME + ".partial.jsonl"
MAPS_DIR = "maps"
_JOURNAL_FORMAT = "wsis.cues.journal"
_RECORD_KEYS = ("image_id", "height", "width", "stride", "classes", "cams")
_ENTRY_KEYS = ("image_id", "height", "width", "stride", "classes", "file", "sha256")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_SHA256 = re.compile(r"[0-9a-f]{64}")


class CueStoreError(ValueError):
    """A cue store's index, journal, map file or record is malformed, or does not match its dataset."""


def cue_map_shape(height, width, stride):
    """The (h, w) of the maps of a ``height`` x ``width`` image at ``stride``: (ceil(height / stride), ceil(width /
    stride))."""
    return -(-int(height) // int(stride)), -(-int(width) // int(stride))


def map_file(image_id):
    """The map's path relative to the store folder."""
    return f"{MAPS_DIR}/{int(image_id)}.npz"


# ------------------------------------------------------------------------------------------------------- validation
def _size(mapping, where):
    """height, width, stride: positive ints."""
    out = {}
    for key in ("height", "width", "stride"):
        if key not in mapping:
            raise CueStoreError(f"{where}: no {key!r}")
        out[key] = _check_int(mapping[key], key, where, CueStoreError)
        if out[key] <= 0:
            raise CueStoreError(f"{where}: {key} must be positive, got {out[key]}")
    return out


def _classes(classes, where):
    if isinstance(classes, np.ndarray):
        if classes.ndim != 1:
            raise CueStoreError(f"{where}: classes must be one-dimensional, got shape {classes.shape}")
        classes = classes.tolist()
    if not isinstance(classes, (list, tuple)):
        raise CueStoreError(f"{where}: classes must be a list of ints, got {type(classes).__name__}")
    classes = [_check_int(c, "a class id", where, CueStoreError) for c in classes]
    if any(c < 0 for c in classes):
        raise CueStoreError(f"{where}: class ids must be non-negative (contiguous ids), got {classes}")
    if len(set(classes)) != len(classes):
        duplicates = sorted({c for c in classes if classes.count(c) > 1})
        raise CueStoreError(f"{where}: class {duplicates} appear more than once in classes {classes}")
    return classes


def _image_where(mapping, where, kind):
    if not isinstance(mapping, Mapping):
        raise CueStoreError(f"{where}: {kind} must be a dict, got {type(mapping).__name__}")
    if "image_id" not in mapping:
        raise CueStoreError(f"{where}: {kind} has no 'image_id'")
    image_id = _check_int(mapping["image_id"], "image_id", where, CueStoreError)
    return image_id, f"{where}: image_id={image_id}"


def _normalize_record(record, where):
    """Validate a record handed to the writer; return (entry without file and sha256, classes int64, cams float16)."""
    image_id, where = _image_where(record, where, "a cue record")
    unknown = set(record) - set(_RECORD_KEYS)
    if unknown:
        raise CueStoreError(f"{where}: unknown record keys {sorted(unknown)} (allowed: {list(_RECORD_KEYS)})")
    for key in ("classes", "cams"):
        if key not in record:
            raise CueStoreError(f"{where}: no {key!r}")
    size = _size(record, where)
    classes = _classes(record["classes"], where)
    cams = np.asarray(record["cams"])
    if cams.dtype.kind not in "fiu":
        raise CueStoreError(f"{where}: cams must be a real-valued array, got dtype {cams.dtype}")
    shape = (len(classes), *cue_map_shape(size["height"], size["width"], size["stride"]))
    if cams.shape != shape:
        raise CueStoreError(f"{where}: cams has shape {cams.shape}, expected (len(classes), ceil(height / stride), "
                            f"ceil(width / stride)) = {shape} for a {size['height']}x{size['width']} image at "
                            f"stride {size['stride']}")
    if cams.dtype.kind == "f" and not np.isfinite(cams).all():
        raise CueStoreError(f"{where}: cams must be finite (found NaN or inf)")
    if (cams < 0).any():
        raise CueStoreError(f"{where}: cams must be non-negative (min {cams.min()})")
    with np.errstate(over="ignore"):  # checked just below
        half = np.ascontiguousarray(cams, dtype="<f2")
    if not np.isfinite(half).all():
        raise CueStoreError(f"{where}: cams overflow float16 (max {cams.max()} > 65504); store normalised maps")
    half[half == 0] = 0  # -0.0 -> 0.0: equal maps, equal bytes
    entry = {"image_id": image_id, **size, "classes": classes}
    return entry, np.asarray(classes, dtype="<i8"), half


def _normalize_entry(entry, where):
    """Validate an index (or journal) entry; return it with the keys in their fixed order and plain types."""
    image_id, where = _image_where(entry, where, "an index entry")
    if set(entry) != set(_ENTRY_KEYS):
        raise CueStoreError(f"{where}: an index entry has the keys {list(_ENTRY_KEYS)}, got {sorted(entry)}")
    out = {"image_id": image_id, **_size(entry, where), "classes": _classes(entry["classes"], where)}
    if entry["file"] != map_file(image_id):
        raise CueStoreError(f"{where}: file must be {map_file(image_id)!r}, got {entry['file']!r}")
    if not isinstance(entry["sha256"], str) or not _SHA256.fullmatch(entry["sha256"]):
        raise CueStoreError(f"{where}: sha256 must be 64 lowercase hex digits, got {entry['sha256']!r}")
    out.update(file=entry["file"], sha256=entry["sha256"])
    return out


# ------------------------------------------------------------------------------------------------------- npz codec
def _encode_npz(classes, cams):
    """The npz bytes of a map: the same arrays always give the same bytes (no timestamps, fixed attributes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, array in (("cams", cams), ("classes", classes)):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # "Unix" on every platform (ZipInfo's default depends on it)
            info.external_attr = 0o644 << 16
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(array), version=(1, 0), allow_pickle=False)
            zf.writestr(info, npy.getvalue())
    return buf.getvalue()


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _decode_npz(data, where):
    """(classes, cams) as stored, checked to be int64 (M,) and float16 (M, h, w)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            if sorted(npz.files) != ["cams", "classes"]:
                raise CueStoreError(f"{where}: a cue map holds 'cams' and 'classes', got {sorted(npz.files)}")
            cams, classes = npz["cams"], npz["classes"]
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
        if isinstance(e, CueStoreError):
            raise
        raise CueStoreError(f"{where}: not a readable cue map ({type(e).__name__}: {e})") from e
    if classes.dtype != np.int64 or classes.ndim != 1:
        raise CueStoreError(f"{where}: classes must be int64 (M,), got {classes.dtype} {classes.shape}")
    if cams.dtype != np.float16 or cams.ndim != 3 or cams.shape[0] != classes.shape[0]:
        raise CueStoreError(f"{where}: cams must be float16 (M, h, w) with M = {classes.shape[0]}, got "
                            f"{cams.dtype} {cams.shape}")
    return classes, cams


# ----------------------------------------------------------------------------------------------------------- index
def _index_bytes(provenance, entries):
    """The canonical ``cues.json``: provenance keys sorted, images sorted by id, one per line."""
    head = f'{{"format":"{FORMAT}","format_version":{FORMAT_VERSION},"provenance":'
    images = ",\n".join(_dumps(entries[i]) for i in sorted(entries))
    return (head + _dumps(provenance, sort_keys=True) + ',"images":[\n' + images + "\n]}\n").encode("ascii")
