"""Reading a cue store: the validated index, each map checked against its sha256, and a lazy per-image view."""
import json
import os

import numpy as np

from wsis.data.store_format import _check_against_dataset, _parse_store

from .format import (
    FORMAT,
    FORMAT_VERSION,
    INDEX_NAME,
    JOURNAL_NAME,
    CueStoreError,
    _decode_npz,
    _normalize_entry,
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
    provenance, entries = _parse_store(data, path, file_format=FORMAT, format_version=FORMAT_VERSION,
                                       what="cue store", normalize=_normalize_entry, error=CueStoreError,
                                       require_sorted=True)
    _check_against_dataset(path, entries, dataset_dicts, require_all, what="cues", error=CueStoreError)
    return provenance, entries


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
