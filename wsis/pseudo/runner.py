"""Run a pseudo-mask generator over a dataset: workers, progress, resume after a kill, report of bad inputs."""
import contextlib
import json
import logging
import multiprocessing as mp
import os

from tqdm import tqdm

from wsis.data.pseudo_store import JOURNAL_SUFFIX, PseudoMaskError, PseudoMaskWriter, load_pseudo_masks

logger = logging.getLogger(__name__)

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


def run_generator(dataset_dicts, generator, out_path, provenance, workers=1, progress=True, overwrite=False):
    """
    Generate pseudo masks for every image and write them to the store ``out_path`` atomically.

    A finished file made with the same provenance is left as it is. Images already in the store's journal (a run
    that was killed) are not recomputed; the final file is the same,
    byte for byte, as that of an uninterrupted run. An image whose generation raises (missing or corrupt image,
    inconsistent annotation) is skipped and reported; it is retried by the next run since it was never journalled.

    Args:
        dataset_dicts (list[dict]): images in the format of :mod:`wsis.data.coco_weak`.
        generator (callable): picklable ``generator(dataset_dict) -> image record``; an optional
            ``generator.process_context()`` context manager is entered once in each worker process, or around the
            run when it is in this process.
        out_path (str): the pseudo-mask json to write.
        provenance (dict): recorded in the file; a journal of a run with other provenance is refused.
        workers (int): processes; 1 runs in this process.

    Returns:
        list[tuple]: ``(image_id, reason)`` of each skipped image (empty when all succeeded).
    """
    if not overwrite and os.path.exists(out_path) and not os.path.exists(out_path + JOURNAL_SUFFIX):
        old, _ = load_pseudo_masks(out_path)
        if json.loads(json.dumps(old)) != json.loads(json.dumps(provenance)):
            raise PseudoMaskError(
                f"{out_path} exists and was made with other settings ({old}); pass overwrite=True (--overwrite) "
                "to generate it again"
            )
        logger.info(f"{out_path} is complete and up to date; nothing to do (overwrite=True regenerates it)")
        return []
    skipped = []
    with PseudoMaskWriter(out_path, provenance, overwrite=overwrite) as writer:
        done = writer.done_ids()
        todo = [d for d in dataset_dicts if d["image_id"] not in done]
        if done:
            logger.info(f"{out_path}: resuming, {len(done)} images done, {len(todo)} to go")
        bar = tqdm(total=len(dataset_dicts), initial=len(dataset_dicts) - len(todo), disable=not progress,
                   desc="pseudo masks", unit="img")
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
