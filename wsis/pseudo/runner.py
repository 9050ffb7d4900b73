"""
Run a pseudo-label generator over a dataset into a store: workers, progress, resume after a kill, report of bad
inputs. One implementation for every kind of store (:class:`StoreKind`): pseudo masks (:data:`PSEUDO_MASKS`, the
default) and localisation cues (:data:`CUES`).
"""
import contextlib
import json
import logging
import multiprocessing as mp
import os
from dataclasses import dataclass
from typing import Callable

from tqdm import tqdm

from wsis.data.cue_store import INDEX_NAME, JOURNAL_NAME, CueStoreError, CueWriter, load_cues, read_cue_record
from wsis.data.pseudo_store import JOURNAL_SUFFIX, PseudoMaskError, PseudoMaskWriter, load_pseudo_masks

__all__ = ["StoreKind", "PSEUDO_MASKS", "CUES", "STORE_KINDS", "store_kind", "run_generator"]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreKind:
    """What the runner (:func:`run_generator`) and the merge (:func:`wsis.pseudo.shards.merge_shards`) need to know
    of one kind of resumable store; ``out`` is the path a caller names the store by (a file or a folder).

    Attributes:
        name: what the store holds, for the progress bar and the log ("pseudo masks").
        writer: ``writer(out, provenance, overwrite=bool)``, a :class:`~wsis.data.pseudo_store.PseudoMaskWriter`-like
            context manager: ``done_ids()``, ``add(record)``, ``finalize()``, ``close()``.
        load: ``load(out) -> (provenance, {image_id: item})`` of a finalized store, validated.
        index_path: ``out -> the file`` that exists once the store is finalized.
        journal_path: ``out -> the journal`` that exists while a run of it is unfinished.
        error: the store's exception type (a ``ValueError``).
        record: ``record(out, item) -> the record`` ``writer.add`` takes: how a merge copies an image of a shard.
        unit: the progress bar's unit.
    """

    name: str
    writer: Callable
    load: Callable
    index_path: Callable
    journal_path: Callable
    error: type
    record: Callable
    unit: str = "img"


def _store_file(out):
    return out


def _pseudo_journal(out):
    return out + JOURNAL_SUFFIX


def _same_record(out, record):
    return record


def _cue_index(out):
    return os.path.join(out, INDEX_NAME)


def _cue_journal(out):
    return os.path.join(out, JOURNAL_NAME)


#: The pseudo-mask store (:mod:`wsis.data.pseudo_store`): ``out`` is its json file.
PSEUDO_MASKS = StoreKind("pseudo masks", PseudoMaskWriter, load_pseudo_masks, _store_file, _pseudo_journal,
                         PseudoMaskError, _same_record)
#: The cue store (:mod:`wsis.data.cue_store`): ``out`` is its folder.
CUES = StoreKind("cues", CueWriter, load_cues, _cue_index, _cue_journal, CueStoreError, read_cue_record)
STORE_KINDS = {"pseudo_masks": PSEUDO_MASKS, "cues": CUES}


def store_kind(store=None):
    """The :class:`StoreKind` of ``store``: None (pseudo masks), a key of :data:`STORE_KINDS`, or a StoreKind."""
    if store is None:
        return PSEUDO_MASKS
    if isinstance(store, StoreKind):
        return store
    if isinstance(store, str) and store in STORE_KINDS:
        return STORE_KINDS[store]
    raise ValueError(f"unknown store kind {store!r}; expected None, a StoreKind or one of {sorted(STORE_KINDS)}")


_worker_generator = _worker_context = None


def _process_context(generator):
    """The generator's per-process set-up, ``generator.process_context()`` (e.g. its torch threads), if it has one."""
    hook = getattr(generator, "process_context", None)
    return hook() if hook is not None else contextlib.nullcontext()


def _init_worker(generator):
    # (no cv2.setNumThreads here: reconfiguring OpenCV's thread pool in a forked child deadlocks)
    global _worker_generator, _worker_context
    _worker_generator = generator
    # the pool owns this process: the set-up lasts as long as it (kept referenced, so that it is not closed)
    _worker_context = _process_context(generator)
    _worker_context.__enter__()


def _safe_call(dataset_dict, generator=None):
    generator = generator or _worker_generator
    try:
        return dataset_dict["image_id"], generator(dataset_dict), None
    except Exception as e:  # a bad input is reported and counted, the run goes on
        return dataset_dict["image_id"], None, f"{dataset_dict.get('file_name')}: {type(e).__name__}: {e}"


def run_generator(dataset_dicts, generator, out_path, provenance, workers=1, progress=True, overwrite=False,
                  store=None):
    """
    Generate pseudo labels for every image and write them to the store ``out_path`` atomically.

    A finished store made with the same provenance is left as it is. Images already in the store's journal (a run
    that was killed) are not recomputed; the final store is the same, byte for byte, as that of an uninterrupted
    run. An image whose generation raises (missing or corrupt image, inconsistent annotation) is skipped and
    reported; it is retried by the next run since it was never journalled.

    Args:
        dataset_dicts (list[dict]): images in the format of :mod:`wsis.data.coco_weak`.
        generator (callable): picklable ``generator(dataset_dict) -> image record`` (the record of the store's
            kind); an optional ``generator.process_context()`` context manager is entered once in each worker
            process, or around the run when it is in this process.
        out_path (str): the store to write: the pseudo-mask json, or the cue store's folder.
        provenance (dict): recorded in the store; a journal of a run with other provenance is refused.
        workers (int): processes; 1 runs in this process.
        store: the kind of store (:func:`store_kind`): None or "pseudo_masks" (default), "cues", a StoreKind.

    Returns:
        list[tuple]: ``(image_id, reason)`` of each skipped image (empty when all succeeded).
    """
    kind = store_kind(store)
    finished = os.path.exists(kind.index_path(out_path)) and not os.path.exists(kind.journal_path(out_path))
    if finished and not overwrite:
        old, _ = kind.load(out_path)
        if json.loads(json.dumps(old)) != json.loads(json.dumps(provenance)):
            raise kind.error(
                f"{out_path} exists and was made with other settings ({old}); pass overwrite=True (--overwrite) "
                "to generate it again"
            )
        logger.info(f"{out_path} is complete and up to date; nothing to do (overwrite=True regenerates it)")
        return []
    skipped = []
    with kind.writer(out_path, provenance, overwrite=overwrite) as writer:
        done = writer.done_ids()
        todo = [d for d in dataset_dicts if d["image_id"] not in done]
        if done:
            logger.info(f"{out_path}: resuming, {len(done)} images done, {len(todo)} to go")
        bar = tqdm(total=len(dataset_dicts), initial=len(dataset_dicts) - len(todo), disable=not progress,
                   desc=kind.name, unit=kind.unit)
        context = contextlib.nullcontext()
        if workers <= 1:  # in the caller's process, whose own set-up comes back afterwards
            context = _process_context(generator)
            results = (_safe_call(d, generator) for d in todo)
            pool = None
        else:
            # the most annotated (usually the slowest) images first and small chunks, so that no worker is left
            # with a long image at the end; the output does not depend on the order
            todo = sorted(todo, key=lambda d: -len(d.get("annotations", ())))
            chunksize = max(1, len(todo) // (workers * 50))
            pool = mp.Pool(workers, initializer=_init_worker, initargs=(generator,))
            results = pool.imap_unordered(_safe_call, todo, chunksize=chunksize)
        try:
            with context:
                for image_id, record, error in results:
                    if error is not None:
                        skipped.append((image_id, error))
                        logger.warning(f"skipped image id {image_id}: {error}")
                    else:
                        writer.add(record)
                    bar.update(1)
        finally:
            bar.close()
            if pool is not None:
                pool.terminate()
                pool.join()
        if skipped:
            logger.warning(f"{len(skipped)} of {len(dataset_dicts)} images skipped; the others are in {out_path}")
        writer.finalize()
    return skipped
