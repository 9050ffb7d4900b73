"""The resumable journal of the stores' writers (:class:`~wsis.data.pseudo_store.PseudoMaskWriter`,
:class:`~wsis.data.cue_store.CueWriter`): one JSON line per finished image, durable, locked, checked on resuming.

File format: the first line is the header ``{"format": <journal format>, "format_version": int, "provenance": {...}}``
(compact JSON, keys sorted), then one compact JSON line per finished image, each with an ``image_id``, in the order
they finished. Every line is appended, flushed and fsync'ed; a failed append is truncated away, so the file is always
a header and whole lines, but for the last line of a writer that was killed while appending.

Opening one (:class:`Journal`) takes an exclusive OS lock (refused while another writer holds it) and scans it: a
header of another format or version is refused, as is another provenance (naming the keys that differ); a
half-written last line (a kill) is dropped with a warning, its image is redone; a corrupt line in the middle, or an
image id twice, is an error. :class:`JournalWriter` is the life cycle both writers build on it. Detectron2-free.
"""
import json
import os
import threading

from .store_format import _dumps, _normalize_provenance, _provenance_difference

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

__all__ = ["Journal", "JournalWriter", "encode_line"]


def encode_line(entry):
    """The journal line of an image's entry: compact JSON in the entry's key order, then a newline (ascii bytes)."""
    return (_dumps(entry) + "\n").encode("ascii")


class Journal:
    """An open, locked journal: the images already done, and durable appends of the next ones.

    Not thread-safe: a writer serialises its calls (its own lock) and checks an image id is new before
    :meth:`append`.

    Args:
        path: the journal file (created if missing; its folder must exist).
        journal_format (str), format_version (int): the header's ``"format"`` and ``"format_version"``.
        provenance (dict): normalised (:func:`~wsis.data.store_format._normalize_provenance`); resuming needs the same
            provenance as the header.
        parse_line: ``parse_line(obj, where) -> entry`` validates one decoded line (a dict with an ``image_id``),
            raising a :class:`ValueError` (the store's error type is one) on a malformed line.
        error (type): the store's error type, raised for the rules of the module docstring.
        what (str): the journal's kind in the error ``"not a wsis <what> (version N)"``.
        writer (str), unit (str): in the lock's error: ``"locked by another <writer>; use one writer per <unit>"``.
        logger (logging.Logger): the store's, for the warning about a dropped half-written line.
        overwrite (bool): empty the journal (once the lock is held) instead of resuming from it.
        on_overwrite: called with no argument right after emptying it, still under the lock (the store's other files).
        keep_entries (bool): keep every image's parsed entry in :attr:`entries` (else only where its line lies).

    Attributes:
        lines (dict): image_id -> (offset, length) of its line, in journal order.
        entries (dict or None): image_id -> its entry as ``parse_line`` returned it, with ``keep_entries``.
    """

    def __init__(self, path, journal_format, format_version, provenance, *, parse_line, error, what, writer, unit,
                 logger, overwrite=False, on_overwrite=None, keep_entries=False):
        self.path = os.fspath(path)
        self.provenance = provenance
        self._format, self._version = journal_format, format_version
        self._parse, self._error, self._what, self._logger = parse_line, error, what, logger
        self.lines = {}
        self.entries = {} if keep_entries else None
        self._file = open(self.path, "a+b")  # appends go to the end whatever the read position
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    raise error(f"{self.path} is locked by another {writer}; use one writer per {unit} and pass "
                                "it the workers' records") from e
            if overwrite:  # only once the lock is ours: never the files of a running writer
                self._file.truncate(0)
                if on_overwrite is not None:
                    on_overwrite()
            self._end = self._scan()
            self._file.seek(0, os.SEEK_END)
            if self._file.tell() != self._end:  # a half-written header or last line
                self._file.truncate(self._end)
            if self._end == 0:
                header = {"format": journal_format, "format_version": format_version, "provenance": provenance}
                self._write((_dumps(header, sort_keys=True) + "\n").encode("ascii"))
                self._header_end = self._end
        except BaseException:
            self._file.close()
            raise

    def _scan(self):
        """Read the header and the lines into :attr:`lines`; return the length of the intact prefix (0: no header)."""
        f, error = self._file, self._error
        f.seek(0)
        header = f.readline()
        if not header.endswith(b"\n"):  # empty, or killed while writing the header: no line can follow it
            return 0
        try:
            head = json.loads(header)
            ok = head.get("format") == self._format and head.get("format_version") == self._version
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise error(f"{self.path}: not a wsis {self._what} (version {self._version}); "
                        "delete it or pass overwrite=True")
        old = _normalize_provenance(head.get("provenance"), self.path, error)
        if old != self.provenance:
            raise error(
                f"{self.path} was started with a different provenance "
                f"({_provenance_difference(old, self.provenance)}); resuming would mix two generators' outputs. "
                "Pass overwrite=True to start again, or restore the original settings")
        self._header_end = offset = len(header)
        line_no = 1
        while True:
            line = f.readline()
            line_no += 1
            if not line:
                return offset
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("no newline")
                entry = self._parse(json.loads(line), f"{self.path} line {line_no}")
            except ValueError as e:
                if f.readline():  # damage in the middle cannot come from a kill
                    raise error(f"{self.path} line {line_no} is corrupt ({e}); "
                                "delete the journal or pass overwrite=True") from e
                self._logger.warning("Dropping the half-written last line of %s (%d bytes); its image is redone",
                                     self.path, len(line))
                return offset
            if entry["image_id"] in self.lines:
                raise error(f"{self.path} line {line_no}: image_id={entry['image_id']} appears twice; "
                            "delete the journal or pass overwrite=True")
            self._register(entry["image_id"], offset, len(line), entry)
            offset += len(line)

    def _register(self, image_id, offset, length, entry):
        self.lines[image_id] = (offset, length)
        if self.entries is not None:
            self.entries[image_id] = entry

    def _write(self, data):
        try:
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
        except BaseException:
            self._file.truncate(self._end)  # never leave a partial line for the next append to follow
            raise
        self._end += len(data)

    @property
    def closed(self):
        """Whether :meth:`close` (or :meth:`remove`) was called."""
        return self._file is None

    def append(self, image_id, data, entry=None):
        """Append an image's line ``data`` (:func:`encode_line` of ``entry``) durably and record it; on failure
        nothing of it stays in the file."""
        offset = self._end
        self._write(data)
        self._register(image_id, offset, len(data), entry)

    def read(self, image_id):
        """The entry of an image, read back from its line and validated by ``parse_line``."""
        offset, length = self.lines[image_id]
        self._file.seek(offset)
        return self._parse(json.loads(self._file.read(length)), self.path)

    def drop(self, image_ids):
        """Rewrite the journal without the lines of ``image_ids``, in one append after the header (a kill during it
        only loses lines: their images are redone)."""
        image_ids = set(image_ids)
        kept, chunks, offset = {}, [], self._header_end
        for image_id, (old, length) in self.lines.items():
            if image_id not in image_ids:
                self._file.seek(old)
                chunks.append(self._file.read(length))
                kept[image_id] = (offset, length)
                offset += length
        entries = None if self.entries is None else {i: self.entries[i] for i in kept}
        self._file.truncate(self._header_end)
        self._end = self._header_end
        self.lines, self.entries = {}, None if entries is None else {}  # what the file holds should the write fail
        self._write(b"".join(chunks))
        self.lines, self.entries = kept, entries

    def close(self):
        """Close the file (and release the lock); a later journal with the same provenance resumes from it."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def remove(self):
        """Close and delete the journal (its store is finalized)."""
        self.close()
        os.remove(self.path)


class JournalWriter:
    """The life cycle the stores' writers share: a thread lock, :meth:`done_ids`, :meth:`close`, and a ``with``
    block that finalizes on leaving normally (an exception or a kill leaves the journal to resume from).

    A subclass calls ``JournalWriter.__init__`` first, then opens its :class:`Journal` as ``self._journal``, and
    defines ``finalize()`` (under ``self._lock``, after :meth:`_check_open`; it sets ``self._finalized``).

    Args:
        final_path: the file ``finalize()`` writes last; existing without ``journal_path`` it is refused unless
            ``overwrite``.
        journal_path: the journal's file.
        name: the output, in the errors about a closed writer and a duplicate image.
        provenance (dict): validated and normalised into ``self.provenance``.
        error (type): the store's error type.
        overwrite (bool): as the subclass's.
    """

    def __init__(self, final_path, journal_path, name, provenance, error, overwrite):
        self._final_path, self._name, self._error = final_path, name, error
        self.provenance = _normalize_provenance(provenance, "provenance", error)
        self._lock = threading.Lock()
        self._finalized = False
        if not overwrite and os.path.exists(final_path) and not os.path.exists(journal_path):
            raise error(f"{final_path} is already finalized and has no journal to resume from; "
                        "pass overwrite=True to generate it again")

    def _check_open(self):
        if self._finalized:
            raise self._error(f"{self._final_path} was already finalized")
        if self._journal.closed:
            raise self._error(f"the writer of {self._name} is closed")

    def _check_new(self, image_id):
        if image_id in self._journal.lines:
            raise self._error(f"image_id={image_id} was already added to {self._name}")

    def done_ids(self):
        """The set of image ids already written (in this run or in the interrupted runs it resumes)."""
        with self._lock:
            return set(self._journal.lines)

    def close(self):
        """Close the journal without finalizing; a later writer with the same provenance resumes from it."""
        with self._lock:
            self._journal.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and not self._finalized:
            self.finalize()
        else:
            self.close()
