"""The pseudo-mask store: the versioned file of pseudo masks that sits between pipeline stages.

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
import logging
import math
import os
import threading
from collections.abc import Mapping

import numpy as np
import pycocotools.mask as mask_util

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "JOURNAL_SUFFIX",
    "PseudoMaskError",
    "encode_mask",
    "decode_mask",
    "source_hash_of_file",
    "source_hash_of_dicts",
    "make_provenance",
    "PseudoMaskWriter",
    "load_pseudo_masks",
    "attach_pseudo_masks",
]

logger = logging.getLogger(__name__)

FORMAT = "wsis.pseudo_masks"
FORMAT_VERSION = 1
JOURNAL_SUFFIX = ".partial.jsonl"
_JOURNAL_FORMAT = "wsis.pseudo_masks.journal"
_PROVENANCE_STR_KEYS = ("method", "wsis_version", "source", "source_hash")
_RECORD_KEYS = {"image_id", "height", "width", "ignore", "instances"}
_INSTANCE_KEYS = {"annotation_id", "category_id", "bbox", "segmentation", "valid", "ignore", "score"}


class PseudoMaskError(ValueError):
    """A pseudo-mask file, journal or record is malformed, or does not match its dataset."""


# ---------------------------------------------------------------------------------------------------- masks and hashes
def encode_mask(mask):
    """Encode an HxW mask (non-zero = foreground) as ``{"size": [H, W], "counts": str}`` (compressed RLE)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"encode_mask expects an HxW mask, got shape {mask.shape}")
    rle = mask_util.encode(np.asfortranarray(mask.astype(bool).astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def _to_pycocotools(rle):
    """The RLE in the form pycocotools' C code takes: compressed, bytes counts."""
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed RLE, as in COCO crowd annotations
        height, width = rle["size"]
        return mask_util.frPyObjects(rle, height, width)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": list(rle["size"]), "counts": counts}


def decode_mask(rle):
    """Decode an RLE (counts as str, bytes or an uncompressed list) to a bool HxW ndarray."""
    return mask_util.decode(_to_pycocotools(rle)).astype(bool)


def source_hash_of_file(path):
    """sha256 (hex) of the bytes of the source annotation file, e.g. a COCO json."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
def _dumps(obj, sort_keys=False):
    return json.dumps(obj, separators=(",", ":"), sort_keys=sort_keys, allow_nan=False)


def _normalize_provenance(provenance, where="provenance"):
    if not isinstance(provenance, Mapping):
        raise PseudoMaskError(f"{where}: provenance must be a dict, got {type(provenance).__name__}")
    for key in _PROVENANCE_STR_KEYS:
        if not isinstance(provenance.get(key), str):
            raise PseudoMaskError(f"{where}: provenance[{key!r}] must be a str, got {provenance.get(key)!r}")
    if not isinstance(provenance.get("params"), Mapping):
        raise PseudoMaskError(f"{where}: provenance['params'] must be a dict, got {provenance.get('params')!r}")
    try:  # a JSON round trip: tuples become lists, so a resumed run compares equal to the journal
        return json.loads(_dumps(dict(provenance), sort_keys=True))
    except (TypeError, ValueError) as e:
        raise PseudoMaskError(f"{where}: provenance must be JSON-serialisable and finite: {e}") from e


def _check_int(value, what, where):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise PseudoMaskError(f"{where}: {what} must be an int, got {value!r}")
    return int(value)


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
        annotation_id = _check_int(annotation_id, "annotation_id", where)
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
        "category_id": _check_int(inst["category_id"], "category_id", where),
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
    image_id = _check_int(record["image_id"], "image_id", where)
    where = f"{where}: image_id={image_id}"
    unknown = set(record) - _RECORD_KEYS
    if unknown:
        raise PseudoMaskError(f"{where}: unknown record keys {sorted(unknown)} (allowed: {sorted(_RECORD_KEYS)})")
    for key in ("height", "width", "instances"):
        if key not in record:
            raise PseudoMaskError(f"{where}: image record has no {key!r}")
    height = _check_int(record["height"], "height", where)
    width = _check_int(record["width"], "width", where)
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


def _provenance_difference(old, new):
    keys = sorted(set(old) | set(new))
    diff = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if k != "params" and old.get(k) != new.get(k)]
    old_p, new_p = old.get("params", {}), new.get("params", {})
    for k in sorted(set(old_p) | set(new_p)):
        if old_p.get(k) != new_p.get(k):
            diff.append(f"params.{k}: {old_p.get(k)!r} -> {new_p.get(k)!r}")
    return "; ".join(diff)


# ----------------------------------------------------------------------------------------------------------- writing
class PseudoMaskWriter:
    """Resumable, deterministic writer of a pseudo-mask file.

    Example::

        with PseudoMaskWriter("out/pseudo_masks.json", make_provenance("box_fill", {}, ...)) as writer:
            todo = [d for d in dataset_dicts if d["image_id"] not in writer.done_ids()]
            for record in pool.imap_unordered(generate, todo):   # workers compute, the parent writes
                writer.add(record)
        # leaving the block normally finalizes; an exception or a kill leaves the journal to resume from

    Args:
        path: the final JSON file. The journal is ``path + JOURNAL_SUFFIX``.
        provenance (dict): see the module docstring (:func:`make_provenance` builds one). Resuming needs the same
            provenance as the journal's first line, else :class:`PseudoMaskError`.
        overwrite (bool): discard an existing journal (and replace an existing final file) instead of resuming.
    """

    def __init__(self, path, provenance, *, overwrite=False):
        self.path = os.fspath(path)
        self.journal_path = self.path + JOURNAL_SUFFIX
        self.provenance = _normalize_provenance(provenance)
        self._lock = threading.Lock()
        self._lines = {}  # image_id -> (offset, length) of its journal line
        self._finalized = False
        if not overwrite and os.path.exists(self.path) and not os.path.exists(self.journal_path):
            raise PseudoMaskError(f"{self.path} is already finalized and has no journal to resume from; "
                                  "pass overwrite=True to generate it again")
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._file = open(self.journal_path, "a+b")  # appends go to the end whatever the read position
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    raise PseudoMaskError(f"{self.journal_path} is locked by another PseudoMaskWriter; "
                                          "use one writer per output and pass it the workers' records") from e
            if overwrite:
                self._file.truncate(0)
            self._end = self._scan_journal()
            self._file.seek(0, os.SEEK_END)
            if self._file.tell() != self._end:
                self._file.truncate(self._end)
            if self._end == 0:
                header = {"format": _JOURNAL_FORMAT, "format_version": FORMAT_VERSION, "provenance": self.provenance}
                self._append((_dumps(header, sort_keys=True) + "\n").encode("ascii"))
        except BaseException:
            self._file.close()
            raise
        if self._lines:
            logger.info("Resuming %s: %d images already done", self.path, len(self._lines))

    def _scan_journal(self):
        """Read the journal's header and records; return the length of its intact prefix (0: write a header)."""
        f = self._file
        f.seek(0)
        header = f.readline()
        if not header.endswith(b"\n"):  # empty, or killed while writing the header: no record can follow it
            return 0
        try:
            head = json.loads(header)
            ok = head.get("format") == _JOURNAL_FORMAT and head.get("format_version") == FORMAT_VERSION
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise PseudoMaskError(f"{self.journal_path}: not a wsis pseudo-mask journal (version {FORMAT_VERSION}); "
                                  "delete it or pass overwrite=True")
        old = _normalize_provenance(head.get("provenance"), self.journal_path)
        if old != self.provenance:
            raise PseudoMaskError(
                f"{self.journal_path} was started with a different provenance "
                f"({_provenance_difference(old, self.provenance)}); resuming would mix two generators' outputs. "
                "Pass overwrite=True to start again, or restore the original settings")
        offset, line_no = len(header), 1
        while True:
            line = f.readline()
            line_no += 1
            if not line:
                return offset
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("no newline")
                record = _normalize_record(json.loads(line), f"{self.journal_path} line {line_no}")
            except ValueError as e:
                if f.readline():  # damage in the middle cannot come from a kill
                    raise PseudoMaskError(f"{self.journal_path} line {line_no} is corrupt ({e}); "
                                          "delete the journal or pass overwrite=True") from e
                logger.warning("Dropping the half-written last line of %s (%d bytes); its image is redone",
                               self.journal_path, len(line))
                return offset
            if record["image_id"] in self._lines:
                raise PseudoMaskError(f"{self.journal_path} line {line_no}: image_id={record['image_id']} "
                                      "appears twice; delete the journal or pass overwrite=True")
            self._lines[record["image_id"]] = (offset, len(line))
            offset += len(line)

    def _append(self, data):
        try:
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
        except BaseException:
            self._file.truncate(self._end)  # never leave a partial line for the next append to follow
            raise
        self._end += len(data)

    def _check_open(self):
        if self._finalized:
            raise PseudoMaskError(f"{self.path} was already finalized")
        if self._file is None:
            raise PseudoMaskError(f"the writer of {self.path} is closed")

    def done_ids(self):
        """The set of image ids already written (in this run or in the interrupted runs it resumes)."""
        with self._lock:
            return set(self._lines)

    def add(self, record):
        """Validate an image record (see the module docstring) and append it to the journal durably."""
        record = _normalize_record(record, f"record for {self.path}")
        data = (_dumps(record) + "\n").encode("ascii")
        with self._lock:
            self._check_open()
            image_id = record["image_id"]
            if image_id in self._lines:
                raise PseudoMaskError(f"image_id={image_id} was already added to {self.path}")
            offset = self._end
            self._append(data)
            self._lines[image_id] = (offset, len(data))

    def finalize(self):
        """Write the sorted final file atomically (temporary file + ``os.replace``), then remove the journal."""
        with self._lock:
            self._check_open()
            tmp_path = self.path + ".tmp"  # the journal lock makes this name ours
            head = f'{{"format":"{FORMAT}","format_version":{FORMAT_VERSION},"provenance":'
            try:
                with open(self.journal_path, "rb") as journal, open(tmp_path, "wb") as out:
                    out.write((head + _dumps(self.provenance, sort_keys=True) + ',"images":[\n').encode("ascii"))
                    for i, image_id in enumerate(sorted(self._lines)):
                        offset, length = self._lines[image_id]
                        journal.seek(offset)
                        record = _normalize_record(json.loads(journal.read(length)), self.journal_path)
                        out.write(((",\n" if i else "") + _dumps(record)).encode("ascii"))
                    out.write(b"\n]}\n")
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp_path, self.path)
            except BaseException:
                if os.path.exists(tmp_path):
                    os.remove(tmp_path)
                raise
            if hasattr(os, "O_DIRECTORY"):  # make the rename durable before the journal goes
                fd = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            self._file.close()
            self._file = None
            os.remove(self.journal_path)
            self._finalized = True
        logger.info("Wrote pseudo masks of %d images to %s", len(self._lines), self.path)
        return self.path

    def close(self):
        """Close the journal without finalizing; a later writer with the same provenance resumes from it."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and not self._finalized:
            self.finalize()
        else:
            self.close()


# ----------------------------------------------------------------------------------------------------------- reading
def load_pseudo_masks(path, dataset_dicts=None, *, require_all=False, expected_source_hash=None,
                      strict_source=False):
    """Read and validate a pseudo-mask file.

    Args:
        path: a file written by :meth:`PseudoMaskWriter.finalize`.
        dataset_dicts (list[dict] or None): if given, every record must match it: known image_id, same height and
            width, every non-null annotation_id present in that image's annotations with the same category_id.
        require_all (bool): every image of ``dataset_dicts`` must have a record.
        expected_source_hash (str or None): compared with ``provenance["source_hash"]``; a difference is logged as
            a warning, or raised with ``strict_source=True``.

    Returns:
        (provenance dict, {image_id: record}) with records in the canonical form of the module docstring.

    Raises:
        PseudoMaskError: naming the file and the offending image id / annotation id.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            data = json.load(f)
        except ValueError as e:
            raise PseudoMaskError(f"{path}: not valid JSON ({e}). An interrupted generator leaves only "
                                  f"{path + JOURNAL_SUFFIX}; rerun it to resume and finalize") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PseudoMaskError(f"{path}: not a wsis pseudo-mask file (expected \"format\": \"{FORMAT}\")")
    if data.get("format_version") != FORMAT_VERSION:
        raise PseudoMaskError(f"{path}: format_version {data.get('format_version')!r} is not supported "
                              f"(this wsis reads version {FORMAT_VERSION})")
    provenance = _normalize_provenance(data.get("provenance"), path)
    if not isinstance(data.get("images"), list):
        raise PseudoMaskError(f"{path}: \"images\" must be a list")
    records = {}
    for i, raw in enumerate(data["images"]):
        record = _normalize_record(raw, f"{path}: images[{i}]")
        if record["image_id"] in records:
            raise PseudoMaskError(f"{path}: image_id={record['image_id']} appears more than once")
        records[record["image_id"]] = record

    if strict_source and expected_source_hash is None:
        raise ValueError("strict_source=True needs expected_source_hash")
    if expected_source_hash is not None and provenance["source_hash"] != expected_source_hash:
        msg = (f"{path}: pseudo masks were generated from source {provenance['source']!r} with hash "
               f"{provenance['source_hash']}, expected {expected_source_hash}; the annotations changed since")
        if strict_source:
            raise PseudoMaskError(msg)
        logger.warning(msg)

    if dataset_dicts is not None:
        _check_against_dataset(path, records, dataset_dicts, require_all)
    elif require_all:
        raise ValueError("require_all=True needs dataset_dicts")
    return provenance, records


def _check_against_dataset(path, records, dataset_dicts, require_all):
    images = {d["image_id"]: d for d in dataset_dicts}
    for image_id in sorted(records):
        record, d = records[image_id], images.get(image_id)
        if d is None:
            raise PseudoMaskError(f"{path}: image_id={image_id} is not in the dataset ({len(images)} images)")
        for key in ("height", "width"):
            if key in d and int(d[key]) != record[key]:
                raise PseudoMaskError(f"{path}: image_id={image_id}: {key} is {record[key]} in the pseudo masks but "
                                      f"{d[key]} in the dataset ({d.get('file_name')})")
        annotations = {a.get("id"): a for a in d.get("annotations", ())}
        for inst in record["instances"]:
            aid = inst["annotation_id"]
            if aid is None:
                continue
            if aid not in annotations:
                hint = "" if set(annotations) != {None} else (" (the dataset dicts carry no annotation 'id': load "
                                                               "them with extra_annotation_keys=['id'])")
                raise PseudoMaskError(f"{path}: image_id={image_id}, annotation_id={aid}: no annotation with this id "
                                      f"in the dataset image{hint}")
            if int(annotations[aid]["category_id"]) != inst["category_id"]:
                raise PseudoMaskError(f"{path}: image_id={image_id}, annotation_id={aid}: category_id is "
                                      f"{inst['category_id']} in the pseudo masks but "
                                      f"{annotations[aid]['category_id']} in the dataset")
    if require_all:
        missing = sorted(set(images) - set(records))
        if missing:
            raise PseudoMaskError(f"{path}: {len(missing)} of {len(images)} dataset images have no pseudo masks "
                                  f"(image_id={missing[:10]}{'...' if len(missing) > 10 else ''})")


# --------------------------------------------------------------------------------------------------------- attaching
def _has_mask(segmentation):
    return isinstance(segmentation, Mapping) or (isinstance(segmentation, list) and len(segmentation) > 0)


def attach_pseudo_masks(dataset_dicts, records, *, keep_existing_masks=False):
    """Return copies of Detectron2 dataset dicts carrying the pseudo masks; the inputs are not modified.

    Per annotation (matched to the pseudo instances by its ``"id"``):

    * with a pseudo instance: ``"segmentation"`` = its RLE, ``"mask_valid"`` = its ``valid`` flag,
      ``"pseudo_mask"`` = True, and ``"ignore_segmentation"`` = its own ignore region (RLE) when it has one: pixels
      that give no loss **to this instance only** (WSPS's same-class overlaps stay negatives for the others);
    * without one: ``"mask_valid"`` = False, box and class kept, ``"segmentation"`` removed (the convention of
      :mod:`wsis.data.coco_weak`; no ground-truth mask leaks into weak training);
    * ``keep_existing_masks=True`` (the semi-supervised setting) first keeps an annotation's own registered
      ``"segmentation"`` (polygons or RLE, non-empty, unless its ``"mask_valid"`` is already False) with
      ``"mask_valid"`` = True, whether or not a pseudo instance exists for it: real masks where the dataset has
      them, pseudo masks for the rest. How many instances train on registered masks is logged.

    Crowd annotations without a pseudo instance are left as they are. Pseudo instances with ``annotation_id`` null are appended as new annotations (bbox_mode 1 = XYWH_ABS,
    iscrowd 0, no ``"id"``). Per image, ``"ignore_mask"`` is the record's image-level ignore (RLE or None: pixels of
    no instance, e.g. crowd or unclaimed regions, that give no loss to any); images without a record keep an
    existing ``"ignore_mask"`` or get None. No mask is decoded.

    Args:
        dataset_dicts (list[dict]): Detectron2 dataset dicts whose annotations carry ``"id"``.
        records (dict[int, dict] or iterable of dict): as returned by :func:`load_pseudo_masks`.
    """
    if not isinstance(records, Mapping):
        records = {r["image_id"]: r for r in records}
    out, seen = [], set()
    counts = {"valid": 0, "invalid": 0, "no pseudo mask": 0, "kept": 0, "generated": 0}
    for d in dataset_dicts:
        new = dict(d)
        record = records.get(d["image_id"])
        by_id, generated = {}, []
        if record is not None:
            seen.add(d["image_id"])
            for inst in record["instances"]:
                if inst["annotation_id"] is None:
                    generated.append(inst)
                else:
                    by_id[inst["annotation_id"]] = inst
        annotations = []
        for ann in d.get("annotations", ()):
            ann = dict(ann)
            ann.pop("ignore_segmentation", None)
            inst = by_id.get(ann.get("id"))
            if ann.get("iscrowd", 0) and inst is None:  # crowd regions: as registered (no instance, no loss)
                annotations.append(ann)
                continue
            if keep_existing_masks and _has_mask(ann.get("segmentation")) and ann.get("mask_valid", True) and \
                    not ann.get("pseudo_mask", False):
                ann["mask_valid"] = True
                counts["kept"] += 1
            elif inst is not None:
                ann.update(_pseudo_fields(inst))
                counts["valid" if inst["valid"] else "invalid"] += 1
            else:
                ann.pop("segmentation", None)
                ann.pop("pseudo_mask", None)
                ann["mask_valid"] = False
                counts["no pseudo mask"] += 1
            annotations.append(ann)
        for inst in generated:
            annotations.append({"bbox": list(inst["bbox"]), "bbox_mode": 1, "category_id": inst["category_id"],
                                "iscrowd": 0, **_pseudo_fields(inst)})
            counts["generated"] += 1
        if "annotations" in d or generated:
            new["annotations"] = annotations
        if record is not None:
            new["ignore_mask"] = dict(record["ignore"]) if record["ignore"] is not None else None
        else:
            new["ignore_mask"] = d.get("ignore_mask")
        out.append(new)
    unused = len(set(records) - seen)
    if unused:
        logger.warning("%d pseudo-mask records have no image in the dataset and were not attached", unused)
    logger.info("Attached pseudo masks to %d of %d images: %s", len(seen), len(out),
                ", ".join(f"{v} {k}" for k, v in counts.items()))
    if counts["kept"]:
        logger.warning("%d instances train on their registered (ground-truth) masks, not on pseudo masks "
                       "(keep_existing_masks=True, WSIS.DATA.KEEP_GT_MASKS)", counts["kept"])
    return out


def _pseudo_fields(inst):
    """The annotation keys of a pseudo instance."""
    fields = {"segmentation": dict(inst["segmentation"]), "mask_valid": inst["valid"], "pseudo_mask": True}
    if inst["ignore"] is not None:
        fields["ignore_segmentation"] = dict(inst["ignore"])
    return fields
