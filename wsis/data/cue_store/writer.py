"""Resumable writing of a cue store: one npz per finished image and a journal of them, then the index atomically."""
import json
import logging
import os
import threading

from wsis.core.io import atomic_open
from wsis.data.pseudo_store.format import _provenance_difference

from .format import (
    _JOURNAL_FORMAT,
    FORMAT_VERSION,
    INDEX_NAME,
    JOURNAL_NAME,
    MAPS_DIR,
    CueStoreError,
    _encode_npz,
    _entry_line,
    _index_bytes,
    _journal_header,
    _normalize_entry,
    _normalize_record,
    _provenance,
    _sha256,
    map_file,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

__all__ = ["CueWriter"]
logger = logging.getLogger("wsis.data.cue_store")


def _file_sha256(path):
    try:
        with open(path, "rb") as f:
            return _sha256(f.read())
    except FileNotFoundError:
        return None


class CueWriter:
    """Resumable, deterministic writer of a cue store (format: :mod:`wsis.data.cue_store.format`).

    Example::

        with CueWriter("out/cues", make_provenance("cam", {"scales": [1.0, 0.5]}, ...)) as writer:
            todo = [d for d in dataset_dicts if d["image_id"] not in writer.done_ids()]
            for record in pool.imap_unordered(compute_cams, todo):   # workers compute, the parent writes
                writer.add(record)
        # leaving the block normally finalizes; an exception or a kill leaves the journal to resume from

    Args:
        out_dir: the store folder; ``cues.json``, ``cues.json.partial.jsonl`` and ``maps/`` are written in it.
        provenance (dict): as the pseudo-mask store's. Resuming needs the same provenance as the journal's first
            line, else :class:`CueStoreError` naming the keys that differ.
        overwrite (bool): discard an existing journal, index and maps instead of resuming (or refusing).
    """

    def __init__(self, out_dir, provenance, *, overwrite=False):
        self.out_dir = os.fspath(out_dir)
        self.index_path = os.path.join(self.out_dir, INDEX_NAME)
        self.journal_path = os.path.join(self.out_dir, JOURNAL_NAME)
        self.maps_dir = os.path.join(self.out_dir, MAPS_DIR)
        self.provenance = _provenance(provenance, "provenance")
        self._lock = threading.Lock()
        self._entries = {}  # image_id -> its index entry, as journalled
        self._finalized = False
        if not overwrite and os.path.exists(self.index_path) and not os.path.exists(self.journal_path):
            raise CueStoreError(f"{self.index_path} is already finalized and has no journal to resume from; "
                                "pass overwrite=True to generate it again")
        os.makedirs(self.maps_dir, exist_ok=True)
        self._file = open(self.journal_path, "a+b")  # appends go to the end whatever the read position
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    raise CueStoreError(f"{self.journal_path} is locked by another CueWriter; use one writer per "
                                        "store and pass it the workers' records") from e
            if overwrite:  # only once the lock is ours: never the files of a running writer
                self._file.truncate(0)
                self._remove_maps(keep=())
                if os.path.exists(self.index_path):
                    os.remove(self.index_path)
            self._end = self._resume()
            if self._end == 0:
                self._file.truncate(0)
                self._append(_journal_header(self.provenance))
        except BaseException:
            self._file.close()
            raise
        if self._entries:
            logger.info("Resuming %s: %d images already done", self.out_dir, len(self._entries))

    # ------------------------------------------------------------------------------------------------- resuming
    def _resume(self):
        """Read the journal, keep the entries whose map is intact, return the journal's length (0: write a header)."""
        header_end, intact_end, entries = self._scan_journal()
        if header_end == 0:
            return 0
        good = []
        for entry in entries:
            sha = _file_sha256(os.path.join(self.out_dir, entry["file"]))
            if sha == entry["sha256"]:
                good.append(entry)
            else:
                logger.warning("%s: image_id=%d: its map %s is %s; the image is redone", self.journal_path,
                               entry["image_id"], entry["file"], "missing" if sha is None else
                               f"not the one journalled (sha256 {sha}, journalled {entry['sha256']})")
        self._entries = {e["image_id"]: e for e in good}
        if len(good) != len(entries):  # rewrite without the entries to redo (a kill here only loses entries)
            self._file.truncate(header_end)
            self._end = header_end
            self._append(b"".join(_entry_line(e) for e in good))
            return self._end
        self._file.seek(0, os.SEEK_END)
        if self._file.tell() != intact_end:  # drop a half-written last line
            self._file.truncate(intact_end)
        return intact_end

    def _scan_journal(self):
        """(length of the header line, 0 when there is none to resume from; length of the intact prefix; the
        journalled entries)."""
        f = self._file
        f.seek(0)
        header = f.readline()
        if not header.endswith(b"\n"):  # empty, or killed while writing the header: no entry can follow it
            return 0, 0, []
        try:
            head = json.loads(header)
            ok = head.get("format") == _JOURNAL_FORMAT and head.get("format_version") == FORMAT_VERSION
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise CueStoreError(f"{self.journal_path}: not a wsis cue-store journal (version {FORMAT_VERSION}); "
                                "delete it or pass overwrite=True")
        old = _provenance(head.get("provenance"), self.journal_path)
        if old != self.provenance:
            raise CueStoreError(
                f"{self.journal_path} was started with a different provenance "
                f"({_provenance_difference(old, self.provenance)}); resuming would mix two generators' outputs. "
                "Pass overwrite=True to start again, or restore the original settings")
        entries, seen, line_no, offset = [], set(), 1, len(header)
        while True:
            line = f.readline()
            line_no += 1
            if not line:
                return len(header), offset, entries
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("no newline")
                entry = _normalize_entry(json.loads(line), f"{self.journal_path} line {line_no}")
            except ValueError as e:
                if f.readline():  # damage in the middle cannot come from a kill
                    raise CueStoreError(f"{self.journal_path} line {line_no} is corrupt ({e}); "
                                        "delete the journal or pass overwrite=True") from e
                logger.warning("Dropping the half-written last line of %s (%d bytes); its image is redone",
                               self.journal_path, len(line))
                return len(header), offset, entries
            if entry["image_id"] in seen:
                raise CueStoreError(f"{self.journal_path} line {line_no}: image_id={entry['image_id']} appears "
                                    "twice; delete the journal or pass overwrite=True")
            seen.add(entry["image_id"])
            entries.append(entry)
            offset += len(line)

    def _remove_maps(self, keep):
        """Remove every file of ``maps/`` not named in ``keep`` (stale maps, temporary files of a kill)."""
        for name in os.listdir(self.maps_dir):
            if name not in keep:
                os.remove(os.path.join(self.maps_dir, name))

    # -------------------------------------------------------------------------------------------------- writing
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
            raise CueStoreError(f"{self.index_path} was already finalized")
        if self._file is None:
            raise CueStoreError(f"the writer of {self.out_dir} is closed")

    def done_ids(self):
        """The set of image ids already written (in this run or in the interrupted runs it resumes)."""
        with self._lock:
            return set(self._entries)

    def add(self, record):
        """Validate a record (see :mod:`.format`), write its npz atomically, then journal its entry durably."""
        entry, classes, cams = _normalize_record(record, f"record for {self.index_path}")
        data = _encode_npz(classes, cams)
        entry.update(file=map_file(entry["image_id"]), sha256=_sha256(data))
        with self._lock:
            self._check_open()
            if entry["image_id"] in self._entries:
                raise CueStoreError(f"image_id={entry['image_id']} was already added to {self.out_dir}")
            with atomic_open(os.path.join(self.out_dir, entry["file"]), "wb") as f:
                f.write(data)
            self._append(_entry_line(entry))
            self._entries[entry["image_id"]] = entry

    def finalize(self):
        """Remove maps no entry names, write ``cues.json`` atomically (:func:`wsis.core.io.atomic_open`), then
        remove the journal."""
        with self._lock:
            self._check_open()
            self._remove_maps(keep={os.path.basename(e["file"]) for e in self._entries.values()})
            with atomic_open(self.index_path, "wb") as out:
                out.write(_index_bytes(self.provenance, self._entries))
            self._file.close()
            self._file = None
            os.remove(self.journal_path)
            self._finalized = True
        logger.info("Wrote the cues of %d images to %s", len(self._entries), self.out_dir)
        return self.out_dir

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
