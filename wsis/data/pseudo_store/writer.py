"""Resumable writing of a pseudo-mask store: a journal of finished images, then one sorted file written atomically."""
import json
import logging
import os
import threading

from wsis.core.io import atomic_open

from .format import (
    _JOURNAL_FORMAT,
    FORMAT,
    FORMAT_VERSION,
    JOURNAL_SUFFIX,
    PseudoMaskError,
    _dumps,
    _normalize_provenance,
    _normalize_record,
    _provenance_difference,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

__all__ = ["PseudoMaskWriter"]
logger = logging.getLogger("wsis.data.pseudo_store")


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
        """Write the sorted final file atomically (:func:`wsis.core.io.atomic_open`), then remove the journal."""
        with self._lock:
            self._check_open()
            head = f'{{"format":"{FORMAT}","format_version":{FORMAT_VERSION},"provenance":'
            with open(self.journal_path, "rb") as journal, atomic_open(self.path, "wb") as out:
                out.write((head + _dumps(self.provenance, sort_keys=True) + ',"images":[\n').encode("ascii"))
                for i, image_id in enumerate(sorted(self._lines)):
                    offset, length = self._lines[image_id]
                    journal.seek(offset)
                    record = _normalize_record(json.loads(journal.read(length)), self.journal_path)
                    out.write(((",\n" if i else "") + _dumps(record)).encode("ascii"))
                out.write(b"\n]}\n")
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
