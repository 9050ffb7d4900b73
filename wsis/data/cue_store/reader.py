"""Reading a cue store: the validated index, each map checked against its sha256, and a lazy per-image view."""
import json
import os

import numpy as np

from .format import (
    FORMAT,
    FORMAT_VERSION,
    INDEX_NAME,
    JOURNAL_NAME,
    CueStoreError,
    _decode_npz,
    _normalize_entry,
    _provenance,
    _sha256,
    cue_map_shape,
)

__all__ = ["load_cues", "read_cue_map", "read_cue_record", "CueStore"]


def load_cues(out_dir, dataset_dicts=None, *, require_all=False):
    """Read and validate a cue store's index (the maps are read by :func:`read_cue_map`).

    Args:
        out_dir: a store folder finalized by :class:`~wsis.data.cue_store.CueWriter`.
        dataset_dicts (list[dict] or None): if given, every entry's image must be in it, with the same height and
            width.
        require_all (bool): every image of ``dataset_dicts`` must have an entry.

    Returns:
        (provenance dict, {image_id: entry}) with the entries of the format (:mod:`.format`), in image id order.

    Raises:
        CueStoreError: naming the index file and the offending image id.
    """
    path = os.path.join(os.fspath(out_dir), INDEX_NAME)
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except FileNotFoundError as e:
        unfinished = os.path.exists(os.path.join(os.fspath(out_dir), JOURNAL_NAME))
        raise CueStoreError(f"{path} does not exist" + ("; an interrupted generator left its journal "
                            f"{JOURNAL_NAME}: rerun it to resume and finalize" if unfinished else "")) from e
    except ValueError as e:
        raise CueStoreError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CueStoreError(f"{path}: not a wsis cue store (expected \"format\": \"{FORMAT}\")")
    if data.get("format_version") != FORMAT_VERSION:
        raise CueStoreError(f"{path}: format_version {data.get('format_version')!r} is not supported "
                            f"(this wsis reads version {FORMAT_VERSION})")
    provenance = _provenance(data.get("provenance"), path)
    if not isinstance(data.get("images"), list):
        raise CueStoreError(f"{path}: \"images\" must be a list")
    entries = {}
    for i, raw in enumerate(data["images"]):
        entry = _normalize_entry(raw, f"{path}: images[{i}]")
        image_id = entry["image_id"]
        if image_id in entries:
            raise CueStoreError(f"{path}: image_id={image_id} appears more than once")
        if entries and image_id < next(reversed(entries)):
            raise CueStoreError(f"{path}: images[{i}]: image_id={image_id} is out of order (sorted by image_id)")
        entries[image_id] = entry
    if dataset_dicts is not None:
        _check_against_dataset(path, entries, dataset_dicts, require_all)
    elif require_all:
        raise ValueError("require_all=True needs dataset_dicts")
    return provenance, entries


def _check_against_dataset(path, entries, dataset_dicts, require_all):
    images = {d["image_id"]: d for d in dataset_dicts}
    for image_id, entry in entries.items():
        d = images.get(image_id)
        if d is None:
            raise CueStoreError(f"{path}: image_id={image_id} is not in the dataset ({len(images)} images)")
        for key in ("height", "width"):
            if key in d and int(d[key]) != entry[key]:
                raise CueStoreError(f"{path}: image_id={image_id}: {key} is {entry[key]} in the cues but {d[key]} "
                                    f"in the dataset ({d.get('file_name')})")
    if require_all:
        missing = sorted(set(images) - set(entries))
        if missing:
            raise CueStoreError(f"{path}: {len(missing)} of {len(images)} dataset images have no cues "
                                f"(image_id={missing[:10]}{'...' if len(missing) > 10 else ''})")


def read_cue_map(out_dir, entry):
    """The maps of one index entry, checked against the entry's sha256, classes and size.

    Returns:
        (classes int64 (M,), cams float32 (M, h, w)) with (h, w) = :func:`cue_map_shape` of the entry.
    """
    entry = _normalize_entry(entry, os.fspath(out_dir))
    path = os.path.join(os.fspath(out_dir), entry["file"])
    where = f"{path}: image_id={entry['image_id']}"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError as e:
        raise CueStoreError(f"{where}: the map file is missing") from e
    if _sha256(data) != entry["sha256"]:
        raise CueStoreError(f"{where}: the map file is corrupt or was replaced (sha256 {_sha256(data)}, the index "
                            f"has {entry['sha256']})")
    classes, cams = _decode_npz(data, where)
    if classes.tolist() != entry["classes"]:
        raise CueStoreError(f"{where}: the map holds classes {classes.tolist()}, the index {entry['classes']}")
    shape = (len(entry["classes"]), *cue_map_shape(entry["height"], entry["width"], entry["stride"]))
    if cams.shape != shape:
        raise CueStoreError(f"{where}: cams has shape {cams.shape}, expected {shape} at stride {entry['stride']}")
    return classes, cams.astype(np.float32)


def read_cue_record(out_dir, entry):
    """The record of one index entry in the form :meth:`CueWriter.add` takes (re-adding it gives the same bytes)."""
    classes, cams = read_cue_map(out_dir, entry)
    return {"image_id": entry["image_id"], "height": entry["height"], "width": entry["width"],
            "stride": entry["stride"], "classes": classes.tolist(), "cams": cams}


class CueStore:
    """A finalized cue store, read lazily: the index at construction, one map per ``store[image_id]``.

    Holds no open file, so it pickles into data-loader workers. ``dataset_dicts``/``require_all``: as
    :func:`load_cues`.
    """

    def __init__(self, out_dir, dataset_dicts=None, *, require_all=False):
        self.out_dir = os.fspath(out_dir)
        self.provenance, self.entries = load_cues(self.out_dir, dataset_dicts, require_all=require_all)

    def __contains__(self, image_id):
        return image_id in self.entries

    def __len__(self):
        return len(self.entries)

    def ids(self):
        """The image ids, sorted."""
        return list(self.entries)

    def __getitem__(self, image_id):
        """(classes int64 (M,), cams float32 (M, h, w)) of one image (:func:`read_cue_map`)."""
        entry = self.entries.get(image_id)
        if entry is None:
            raise KeyError(f"{self.out_dir}: no cues for image_id={image_id}")
        return read_cue_map(self.out_dir, entry)

    def __repr__(self):
        return f"CueStore({self.out_dir!r}, {len(self)} images, method={self.provenance['method']!r})"
