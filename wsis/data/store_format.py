"""What the formats of the pseudo-mask store and the cue store share: compact JSON, provenance validation and
comparison, int checks, and the reading of a finished store file (format, version, unique image ids, the dataset).

Each helper takes the store's error type (``error``: :class:`~wsis.data.pseudo_store.PseudoMaskError`,
:class:`~wsis.data.cue_store.CueStoreError`), so a store raises only its own. Detectron2-free: NumPy and the standard
library only.
"""
import json
from collections.abc import Mapping

import numpy as np

_PROVENANCE_STR_KEYS = ("method", "wsis_version", "source", "source_hash")


def _dumps(obj, sort_keys=False):
    """Compact JSON (no spaces), finite numbers only: the serialisation of every line and file of the stores."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=sort_keys, allow_nan=False)


def _normalize_provenance(provenance, where, error):
    """Validate a provenance dict (str method, wsis_version, source and source_hash; dict params; more keys allowed)
    and return its JSON round trip, so that a resumed run compares equal to its journal."""
    if not isinstance(provenance, Mapping):
        raise error(f"{where}: provenance must be a dict, got {type(provenance).__name__}")
    for key in _PROVENANCE_STR_KEYS:
        if not isinstance(provenance.get(key), str):
            raise error(f"{where}: provenance[{key!r}] must be a str, got {provenance.get(key)!r}")
    if not isinstance(provenance.get("params"), Mapping):
        raise error(f"{where}: provenance['params'] must be a dict, got {provenance.get('params')!r}")
    try:  # a JSON round trip: tuples become lists, so a resumed run compares equal to the journal
        return json.loads(_dumps(dict(provenance), sort_keys=True))
    except (TypeError, ValueError) as e:
        raise error(f"{where}: provenance must be JSON-serialisable and finite: {e}") from e


def _provenance_difference(old, new):
    """The keys in which two provenances differ, ``params`` key by key: ``"key: old -> new; params.k: old -> new"``."""
    keys = sorted(set(old) | set(new))
    diff = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if k != "params" and old.get(k) != new.get(k)]
    old_p, new_p = old.get("params", {}), new.get("params", {})
    for k in sorted(set(old_p) | set(new_p)):
        if old_p.get(k) != new_p.get(k):
            diff.append(f"params.{k}: {old_p.get(k)!r} -> {new_p.get(k)!r}")
    return "; ".join(diff)


def _check_int(value, what, where, error):
    """``value`` as a plain int; a bool, float or str is refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise error(f"{where}: {what} must be an int, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------------------------------------- reading
def _parse_store(data, path, *, file_format, format_version, what, normalize, error, require_sorted=False):
    """Check a finished store file's parsed JSON ``data`` and validate its images.

    Args:
        file_format, format_version: the file's expected ``"format"`` and ``"format_version"``.
        what (str): the kind of file, in the error: ``"not a wsis <what>"``.
        normalize: ``normalize(raw, where) -> entry`` validates one element of ``"images"`` (with an ``image_id``).
        require_sorted (bool): the images must be in increasing image id order.

    Returns:
        (provenance dict, {image_id: entry}) in the file's order.
    """
    if not isinstance(data, dict) or data.get("format") != file_format:
        raise error(f"{path}: not a wsis {what} (expected \"format\": \"{file_format}\")")
    if data.get("format_version") != format_version:
        raise error(f"{path}: format_version {data.get('format_version')!r} is not supported "
                    f"(this wsis reads version {format_version})")
    provenance = _normalize_provenance(data.get("provenance"), path, error)
    if not isinstance(data.get("images"), list):
        raise error(f"{path}: \"images\" must be a list")
    entries = {}
    for i, raw in enumerate(data["images"]):
        entry = normalize(raw, f"{path}: images[{i}]")
        image_id = entry["image_id"]
        if image_id in entries:
            raise error(f"{path}: image_id={image_id} appears more than once")
        if require_sorted and entries and image_id < next(reversed(entries)):
            raise error(f"{path}: images[{i}]: image_id={image_id} is out of order (sorted by image_id)")
        entries[image_id] = entry
    return provenance, entries


def _check_against_dataset(path, entries, dataset_dicts, require_all, *, what, error, check_image=None):
    """Check a store's ``{image_id: entry}`` against Detectron2 dataset dicts (nothing to do when they are None).

    Every entry's image must be in the dataset with the same height and width (where the dicts have them), then pass
    ``check_image(image_id, entry, dataset_dict)`` if given; with ``require_all`` every dataset image must have an
    entry. ``what`` names the store's content in the errors ("pseudo masks", "cues").
    """
    if dataset_dicts is None:
        if require_all:
            raise ValueError("require_all=True needs dataset_dicts")
        return
    images = {d["image_id"]: d for d in dataset_dicts}
    for image_id in sorted(entries):
        entry, d = entries[image_id], images.get(image_id)
        if d is None:
            raise error(f"{path}: image_id={image_id} is not in the dataset ({len(images)} images)")
        for key in ("height", "width"):
            if key in d and int(d[key]) != entry[key]:
                raise error(f"{path}: image_id={image_id}: {key} is {entry[key]} in the {what} but {d[key]} in the "
                            f"dataset ({d.get('file_name')})")
        if check_image is not None:
            check_image(image_id, entry, d)
    if require_all:
        missing = sorted(set(images) - set(entries))
        if missing:
            raise error(f"{path}: {len(missing)} of {len(images)} dataset images have no {what} "
                        f"(image_id={missing[:10]}{'...' if len(missing) > 10 else ''})")
