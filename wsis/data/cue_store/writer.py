"""Resumable writing of a cue store: one npz per finished image and a journal of them, then the index atomically."""
import logging
import os

from wsis.core.io import atomic_open
from wsis.data.journal import Journal, JournalWriter, encode_line, fcntl  # noqa: F401  (fcntl: None where not POSIX)

from .format import (
    _JOURNAL_FORMAT,
    FORMAT_VERSION,
    INDEX_NAME,
    JOURNAL_NAME,
    MAPS_DIR,
    CueStoreError,
    _encode_npz,
    _index_bytes,
    _normalize_entry,
    _normalize_record,
    _sha256,
    map_file,
)

__all__ = ["CueWriter"]
logger = logging.getLogger("wsis.data.cue_store")


def _file_sha256(path):
    try:
        with open(path, "rb") as f:
            return _sha256(f.read())
    except FileNotFoundError:
        return None


class CueWriter(JournalWriter):
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
        super().__init__(self.index_path, self.journal_path, self.out_dir, provenance, CueStoreError, overwrite)
        os.makedirs(self.maps_dir, exist_ok=True)
        self._journal = Journal(self.journal_path, _JOURNAL_FORMAT, FORMAT_VERSION, self.provenance,
                                parse_line=_normalize_entry, error=CueStoreError, what="cue-store journal",
                                writer="CueWriter", unit="store", logger=logger, overwrite=overwrite,
                                on_overwrite=self._discard, keep_entries=True)
        try:
            self._drop_lost_maps()
        except BaseException:
            self._journal.close()
            raise
        if self._journal.entries:
            logger.info("Resuming %s: %d images already done", self.out_dir, len(self._journal.entries))

    # ------------------------------------------------------------------------------------------------- resuming
    def _discard(self):
        """Remove the maps and the index of the run an overwrite replaces (under the journal's lock)."""
        self._remove_maps(keep=())
        if os.path.exists(self.index_path):
            os.remove(self.index_path)

    def _drop_lost_maps(self):
        """Drop from the journal the entries whose map is missing or not the one journalled: their images are
        redone."""
        lost = []
        for entry in self._journal.entries.values():
            sha = _file_sha256(os.path.join(self.out_dir, entry["file"]))
            if sha != entry["sha256"]:
                lost.append(entry["image_id"])
                logger.warning("%s: image_id=%d: its map %s is %s; the image is redone", self.journal_path,
                               entry["image_id"], entry["file"], "missing" if sha is None else
                               f"not the one journalled (sha256 {sha}, journalled {entry['sha256']})")
        if lost:
            self._journal.drop(lost)

    def _remove_maps(self, keep):
        """Remove every file of ``maps/`` not named in ``keep`` (stale maps, temporary files of a kill)."""
        for name in os.listdir(self.maps_dir):
            if name not in keep:
                os.remove(os.path.join(self.maps_dir, name))

    # -------------------------------------------------------------------------------------------------- writing
    def add(self, record):
        """Validate a record (see :mod:`.format`), write its npz atomically, then journal its entry durably."""
        entry, classes, cams = _normalize_record(record, f"record for {self.index_path}")
        data = _encode_npz(classes, cams)
        entry.update(file=map_file(entry["image_id"]), sha256=_sha256(data))
        with self._lock:
            self._check_open()
            self._check_new(entry["image_id"])
            with atomic_open(os.path.join(self.out_dir, entry["file"]), "wb") as f:
                f.write(data)
            self._journal.append(entry["image_id"], encode_line(entry), entry)

    def finalize(self):
        """Remove maps no entry names, write ``cues.json`` atomically (:func:`wsis.core.io.atomic_open`), then
        remove the journal."""
        with self._lock:
            self._check_open()
            entries = self._journal.entries
            self._remove_maps(keep={os.path.basename(e["file"]) for e in entries.values()})
            with atomic_open(self.index_path, "wb") as out:
                out.write(_index_bytes(self.provenance, entries))
            self._journal.remove()
            self._finalized = True
        logger.info("Wrote the cues of %d images to %s", len(self._journal.entries), self.out_dir)
        return self.out_dir
