"""DenseCRF refinement of instance masks against their image (BBTP's inference post-processing), detectron2-free."""
import atexit
import multiprocessing as mp
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from wsis.core.boxes import pixel_extent

from wsis.core.crf import DenseCRFParams, refine_binary_mask

__all__ = ["refine_instance_masks", "shared_executor", "shutdown_executors"]


def _crop(box, margin, height, width):
    """Pixels of the box grown by ``margin`` of its size on each side (every pixel it touches), in the image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    mx, my = margin * max(x1 - x0, 1.0), margin * max(y1 - y0, 1.0)
    return pixel_extent((x0 - mx, y0 - my, x1 + mx, y1 + my), height, width, rounding="outward")


def _refine_one(args):
    image, prob, params = args
    return refine_binary_mask(image, prob, params) if prob.size else prob


def refine_instance_masks(image, soft_masks, boxes, params=DenseCRFParams(), box_margin=0.2, executor=None):
    """
    Refine each instance's soft mask with a 2-label DenseCRF on a crop around its box (the rest of the image cannot
    change the box's labels much and only costs time).

    Args:
        image (ndarray): (H, W, 3) uint8.
        soft_masks (ndarray): (N, H, W) foreground probabilities in [0, 1] (pasted mask-head outputs).
        boxes (ndarray): (N, 4) XYXY boxes in image coordinates.
        params (DenseCRFParams): CRF kernels.
        box_margin (float): context added on each side, as a fraction of the box size.
        executor (Executor or None): e.g. :func:`shared_executor` to refine instances in parallel.

    Returns:
        ndarray[float32]: (N, H, W) refined probabilities; outside each crop the input is kept.
    """
    soft_masks = np.asarray(soft_masks, dtype=np.float32)
    n, h, w = soft_masks.shape
    if image.shape[:2] != (h, w):
        raise ValueError(f"image {image.shape[:2]} and masks {(h, w)} differ in size")
    if len(boxes) != n:
        raise ValueError(f"{len(boxes)} boxes for {n} masks")
    crops = [_crop(b, box_margin, h, w) for b in boxes]
    jobs = [(image[y0:y1, x0:x1], soft_masks[i, y0:y1, x0:x1], params) for i, (x0, y0, x1, y1) in enumerate(crops)]
    results = list(executor.map(_refine_one, jobs)) if executor is not None else [_refine_one(j) for j in jobs]
    out = soft_masks.copy()
    for i, ((x0, y0, x1, y1), r) in enumerate(zip(crops, results)):
        out[i, y0:y1, x0:x1] = r
    return out


_EXECUTORS = {}
_LOCK = threading.Lock()


def shared_executor(num_workers):
    """
    A process pool of ``num_workers`` for :func:`refine_instance_masks`, shared by every caller of this process and
    shut down at exit; None for ``num_workers <= 0``.

    It lives here rather than on a model, so models stay deep-copyable and picklable (EMA, ``copy.deepcopy``), and
    its workers come from a *forkserver* (spawn where that does not exist): a process that already uses CUDA (a
    DDP rank) is never forked.
    """
    num_workers = int(num_workers)
    if num_workers <= 0:
        return None
    with _LOCK:
        pool = _EXECUTORS.get(num_workers)
        if pool is None:
            method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
            pool = _EXECUTORS[num_workers] = ProcessPoolExecutor(num_workers, mp_context=mp.get_context(method))
        return pool


def shutdown_executors():
    """Shut down the pools of :func:`shared_executor` (also done at interpreter exit)."""
    with _LOCK:
        pools = list(_EXECUTORS.values())
        _EXECUTORS.clear()
    for pool in pools:
        pool.shutdown(wait=True)


atexit.register(shutdown_executors)
