"""The pseudo-mask store's file format (constants, error type, source hashes, provenance, record validation).

Weak labels -> a generator (box fill, GrabCut ∩ proposals, BoxCaseg proxy masks, a model's own predictions...)
-> **pseudo masks** (this file) -> :func:`attach_pseudo_masks` at dataset registration -> Mask R-CNN training
-> the next round.
Detectron2-free: NumPy, pycocotools and the standard library only.

File format (``format_version`` 1), one JSON document, e.g. ``pseudo_masks.json``::

    {"format": "wsis.pseudo_masks", "format_version": 1,
     "provenance": {"method": str, "params": {...}, "wsis_version": str,
                    "source": str,        # dataset name or annotation json path
                    "source_hash": str,   # source_hash_of_file() or source_hash_of_dicts(); more keys allowed
                    ...},
     "images": [                          # sorted by image_id, one image per line
       {"image_id": int, "height": int, "width": int,
        "ignore": RLE or null,            # per-image ignore region
        "instances": [
          {"annotation_id": int or null,  # the source COCO annotation id; null: an instance the generator created
                                          #   (no source box, e.g. from image tags); attach() appends it
           "category_id": int,            # contiguous id, as in the dataset dicts
           "bbox": [x, y, w, h],          # absolute XYWH floats
           "segmentation": RLE,           # {"size": [height, width], "counts": str} (compressed pycocotools RLE)
           "valid": bool,                 # False: dropped/unsure mask; box and class are kept, mask loss is off
           "ignore": RLE or null,         # pixels of this instance excluded from the loss
           "score": float}, ...]}, ...]}

Determinism: no timestamps, provenance keys sorted, every record re-serialised in a fixed key order with compact
separators, images sorted by id. A run that was killed and resumed, or whose workers finished out of order, therefore
writes the same bytes as a clean sequential run. Instances keep the order the generator gave.

Writing (:class:`PseudoMaskWriter`) is resumable: every finished image is appended, flushed and fsync'ed as one line of
a journal ``<path>.partial.jsonl`` whose first line holds the provenance; :meth:`PseudoMaskWriter.finalize` writes the
sorted file atomically and removes the journal. One writer per output: ``--workers N`` generators compute records in
worker processes and hand them to the single writer in the parent (an OS lock refuses a second writer).
"""
import hashlib
import json
import math
from collections.abc import Mapping

import numpy as np

from wsis.core.io import sha256_file
from wsis.core.masks import _to_pycocotools
from wsis.data.store_format import _check_int

__all__ = ["FORMAT", "FORMAT_VERSION", "JOURNAL_SUFFIX", "PseudoMaskError", "source_hash_of_file", "source_hash_of_dicts",
           "make_provenance"]

FORMAT = "wsis.pseudo_masks"
FORMAT_VERSION = 1
JOURNAL_SUFFIX = ".partial.jsonl"
_JOURNAL_FORMAT = "wsis.pseudo_masks.journal"
_RECORD_KEYS = {"image_id", "height", "width", "ignore", "instances"}
_INSTANCE_KEYS = {"annotation_id", "category_id", "bbox", "segmentation", "valid", "ignore", "score"}


class PseudoMaskError(ValueError):
    """A pseudo-mask file, journal or record is malformed, or does not match its dataset."""



def source_hash_of_file(path):
    """sha256 (hex) of the bytes of the source annotation file, e.g. a COCO json."""
    return sha256_file(path)


def _plain_int(value):
    return None if value is None else int(value)


def source_hash_of_dicts(dataset_dicts):
    """sha256 (hex) of what pseudo masks depend on in Detectron2 dataset dicts.

    Covers, per image sorted by ``image_id``: image_id, height, width and, per annotation in the given order,
    id, category_id, bbox, bbox_mode and iscrowd. File names and other keys are not covered.
    """
    digest = hashlib.sha256()
    for d in sorted(dataset_dicts, key=lambda d: d["image_id"]):
        annotations = [
            [_plain_int(a.get("id")), int(a["category_id"]), [float(v) for v in a["bbox"]],
             int(a.get("bbox_mode", 1)), int(a.get("iscrowd", 0))]
            for a in d.get("annotations", ())
        ]
        row = [_plain_int(d["image_id"]), _plain_int(d.get("height")), _plain_int(d.get("width")), annotations]
        digest.update(json.dumps(row, separators=(",", ":")).encode("ascii") + b"\n")
    return digest.hexdigest()


def make_provenance(method, params=None, *, source, source_hash, **extra):
    """A provenance dict for :class:`PseudoMaskWriter`, with ``wsis_version`` filled in; ``extra`` keys are kept."""
    from wsis import __version__

    return dict(extra, method=method, params=dict(params or {}), wsis_version=__version__,
                source=source, source_hash=source_hash)



# ------------------------------------------------------------------------------------------------------- validation
def _check_rle(rle, height, width, what, where, optional=False):
    if rle is None and optional:
        return None
    if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
        raise PseudoMaskError(f"{where}: {what} must be an RLE dict with 'size' and 'counts', got {type(rle).__name__}")
    size = rle["size"]
    if not isinstance(size, (list, tuple)) or list(size) != [height, width] or not all(
            isinstance(s, (int, np.integer)) for s in size):
        raise PseudoMaskError(f"{where}: {what} has size {size!r} but the image is [height, width] = {[height, width]}")
    counts = rle["counts"]
    if isinstance(counts, list):
        counts = _to_pycocotools({"size": [height, width], "counts": counts})["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    if not isinstance(counts, str):
        raise PseudoMaskError(f"{where}: {what} counts must be str, bytes or a list, got {type(counts).__name__}")
    return {"size": [height, width], "counts": counts}


def _check_number(value, what, where):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise PseudoMaskError(f"{where}: {what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise PseudoMaskError(f"{where}: {what} must be finite, got {value!r}")
    return float(value)


def _normalize_instance(inst, height, width, where):
    if not isinstance(inst, Mapping):
        raise PseudoMaskError(f"{where}: an instance must be a dict, got {type(inst).__name__}")
    annotation_id = inst.get("annotation_id")
    if annotation_id is not None:
        annotation_id = _check_int(annotation_id, "annotation_id", where, PseudoMaskError)
        where = f"{where}, annotation_id={annotation_id}"
    unknown = set(inst) - _INSTANCE_KEYS
    if unknown:
        raise PseudoMaskError(f"{where}: unknown instance keys {sorted(unknown)} (allowed: {sorted(_INSTANCE_KEYS)})")
    for key in ("annotation_id", "category_id", "bbox", "segmentation"):
        if key not in inst:
            raise PseudoMaskError(f"{where}: instance has no {key!r}")
    bbox = inst["bbox"]
    if not isinstance(bbox, (list, tuple, np.ndarray)) or len(bbox) != 4:
        raise PseudoMaskError(f"{where}: bbox must be [x, y, w, h], got {bbox!r}")
    valid = inst.get("valid", True)
    if not isinstance(valid, (bool, np.bool_)):
        raise PseudoMaskError(f"{where}: valid must be a bool, got {valid!r}")
    return {
        "annotation_id": annotation_id,
        "category_id": _check_int(inst["category_id"], "category_id", where, PseudoMaskError),
        "bbox": [_check_number(v, "bbox", where) for v in bbox],
        "segmentation": _check_rle(inst["segmentation"], height, width, "segmentation", where),
        "valid": bool(valid),
        "ignore": _check_rle(inst.get("ignore"), height, width, "instance ignore", where, optional=True),
        "score": _check_number(inst.get("score", 1.0), "score", where),
    }


def _normalize_record(record, where):
    """Validate one image record and return it in canonical form (fixed key order, plain types, str counts).

    ``valid`` (default True), ``ignore`` (default None) and ``score`` (default 1.0) may be omitted when adding.
    """
    if not isinstance(record, Mapping):
        raise PseudoMaskError(f"{where}: an image record must be a dict, got {type(record).__name__}")
    if "image_id" not in record:
        raise PseudoMaskError(f"{where}: image record has no 'image_id'")
    image_id = _check_int(record["image_id"], "image_id", where, PseudoMaskError)
    where = f"{where}: image_id={image_id}"
    unknown = set(record) - _RECORD_KEYS
    if unknown:
        raise PseudoMaskError(f"{where}: unknown record keys {sorted(unknown)} (allowed: {sorted(_RECORD_KEYS)})")
    for key in ("height", "width", "instances"):
        if key not in record:
            raise PseudoMaskError(f"{where}: image record has no {key!r}")
    height = _check_int(record["height"], "height", where, PseudoMaskError)
    width = _check_int(record["width"], "width", where, PseudoMaskError)
    if height <= 0 or width <= 0:
        raise PseudoMaskError(f"{where}: height and width must be positive, got {height}x{width}")
    if not isinstance(record["instances"], (list, tuple)):
        raise PseudoMaskError(f"{where}: instances must be a list, got {type(record['instances']).__name__}")
    instances = [_normalize_instance(inst, height, width, where) for inst in record["instances"]]
    ids = [inst["annotation_id"] for inst in instances if inst["annotation_id"] is not None]
    if len(ids) != len(set(ids)):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        raise PseudoMaskError(f"{where}: annotation_id {duplicates} appear more than once")
    return {
        "image_id": image_id,
        "height": height,
        "width": width,
        "ignore": _check_rle(record.get("ignore"), height, width, "image ignore", where, optional=True),
        "instances": instances,
    }

