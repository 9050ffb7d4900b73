"""Resumable writing of a pseudo-mask store: a journal of finished images, then one sorted file written atomically."""
import logging
import os

from wsis.core.io import atomic_open
from wsis.data.journal import Journal, JournalWriter, encode_line, fcntl  # noqa: F401  (fcntl: None where not POSIX)
from wsis.data.store_format import _dumps

from .format import _JOURNAL_FORMAT, FORMAT, FORMAT_VERSION, JOURNAL_SUFFIX, PseudoMaskError, _normalize_record

__all__ = ["PseudoMaskWriter"]
logger = logging.getLogger("wsis.data.pseudo_store")


class PseudoMaskWriter(JournalWriter):
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
        super().__init__(self.path, self.journal_path, self.path, provenance, PseudoMaskError, overwrite)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._journal = Journal(self.journal_path, _JOURNAL_FORMAT, FORMAT_VERSION, self.provenance,
                                parse_line=_normalize_record, error=PseudoMaskError, what="pseudo-mask journal",
                                writer="PseudoMaskWriter", unit="output", logger=logger, overwrite=overwrite)
        if self._journal.lines:
            logger.info("Resuming %s: %d images already done", self.path, len(self._journal.lines))

    def add(self, record):
        """Validate an image record (see the module docstring) and append it to the journal durably."""
        record = _normalize_record(record, f"record for {self.path}")
        data = encode_line(record)
        with self._lock:
            self._check_open()
            self._check_new(record["image_id"])
            self._journal.append(record["image_id"], data)

    def finalize(self):
        """Write the sorted final file atomically (:func:`wsis.core.io.atomic_open`), then remove the journal."""
        with self._lock:
            self._check_open()
            head = f'{{"format":"{FORMAT}","format_version":{FORMAT_VERSION},"provenance":'
            with atomic_open(self.path, "wb") as out:
                out.write((head + _dumps(self.provenance, sort_keys=True) + ',"images":[\n').encode("ascii"))
                for i, image_id in enumerate(sorted(self._journal.lines)):
                    out.write(((",\n" if i else "") + _dumps(self._journal.read(image_id))).encode("ascii"))
                out.write(b"\n]}\n")
            self._journal.remove()
            self._finalized = True
        logger.info("Wrote pseudo masks of %d images to %s", len(self._journal.lines), self.path)
        return self.path
