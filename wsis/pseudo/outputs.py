"""
The outputs every pseudo-mask job writes next to its store: the skip report, quality figures (``metrics.json``),
overlay pictures and semantic label maps.
"""
import logging
import os

import cv2

from wsis import __version__
from wsis.core.io import atomic_write_json
from wsis.core.visualize import draw_pseudo_masks
from wsis.data.pseudo_store import load_pseudo_masks
from wsis.evaluation.pseudo_report import (
    GENERATED_SCORING,
    SCORING,
    generated_quality_report,
    has_generated_instances,
    quality_report,
    quality_summary,
    quality_warnings,
)

__all__ = ["write_job_outputs"]
logger = logging.getLogger("wsis.pseudo.job")


def write_job_outputs(out_dir, store_file, skipped, box_dicts, gt_dicts, thing_classes, num_vis=8,
                      save_semantic=False, info=None, hint=None):
    """
    Args:
        out_dir (str): the job's folder. store_file (str): the pseudo-mask store the job wrote.
        skipped (list[tuple]): ``(image_id, reason)`` from :func:`wsis.pseudo.run_generator`.
        box_dicts (list[dict]): what the generator saw. gt_dicts (list[dict]): the same images with their masks,
            when the source has masks (quality figures are computed only then).
        thing_classes (list[str]): class names for the overlays. num_vis (int): overlays to draw.
        save_semantic (bool): also write ``semantic/<image_id>.png`` (:func:`wsis.core.semantic.write_semantic_pngs`).
        info (dict): added to ``metrics.json`` (method, parameters, source).
        hint (str or None): the settings a warning about dropped masks names (the generator's ``quality_hint``).

    ``metrics.json`` starts with :func:`wsis.evaluation.pseudo_report.quality_report` (every GT instance first),
    ``scoring`` and ``warnings``. Writes ``skipped.json`` (if any image was skipped), ``metrics.json``, ``vis/<image_id>.jpg`` and optionally
    ``semantic/``. An image absent from the store counts as skipped even when the store was already complete
    (a re-run that found nothing to do keeps the earlier ``skipped.json``).

    Returns:
        dict: the contents of ``metrics.json``.
    """
    _, records = load_pseudo_masks(store_file, box_dicts)
    num_skipped = sum(d["image_id"] not in records for d in box_dicts)
    skipped_file = os.path.join(out_dir, "skipped.json")
    if skipped:
        atomic_write_json([{"image_id": i, "reason": r} for i, r in skipped], skipped_file, indent=1)
    elif not num_skipped and os.path.exists(skipped_file):
        os.remove(skipped_file)

    metrics, warnings = {}, []
    has_masks = any("segmentation" in a for d in gt_dicts for a in d["annotations"])
    if has_masks and has_generated_instances(records):  # from tags: no annotation to pair with, AP^r instead
        metrics.update(generated_quality_report(records, gt_dicts, len(thing_classes)), scoring=GENERATED_SCORING)
    elif has_masks:
        report = quality_report(records, gt_dicts)
        warnings = quality_warnings(report, hint or "the generator's drop settings")
        metrics.update(report)
        metrics.update(scoring=SCORING, warnings=warnings)
    metrics.update(info or {})
    metrics.update({"num_images": len(records), "num_skipped": num_skipped, "wsis_version": __version__})
    atomic_write_json(metrics, os.path.join(out_dir, "metrics.json"), indent=2)

    vis_dir = os.path.join(out_dir, "vis")
    os.makedirs(vis_dir, exist_ok=True)
    by_id = {d["image_id"]: d for d in box_dicts}
    for image_id in sorted(records)[:num_vis]:
        image = cv2.imread(by_id[image_id]["file_name"], cv2.IMREAD_COLOR)
        if image is None:
            logger.warning(f"image id {image_id}: cannot read {by_id[image_id]['file_name']}, no overlay")
            continue
        cv2.imwrite(os.path.join(vis_dir, f"{image_id}.jpg"), draw_pseudo_masks(image, records[image_id], thing_classes))
    if save_semantic:
        from wsis.core.semantic import write_semantic_pngs

        write_semantic_pngs(records, os.path.join(out_dir, "semantic"))

    logger.info(f"pseudo masks: {store_file}")
    if "all/mean_iou" in metrics:
        logger.info(quality_summary(metrics))
    elif "AP^r@0.5" in metrics:
        logger.info(f"pseudo instances: AP^r@0.25 {metrics['AP^r@0.25']:.1f}, @0.5 {metrics['AP^r@0.5']:.1f}, "
                    f"@0.75 {metrics['AP^r@0.75']:.1f}; pixel mIoU {metrics['pixel_miou']:.3f}")
    for w in warnings:
        logger.warning(w)
    if num_skipped:
        logger.warning(f"{num_skipped} image(s) skipped, listed in {skipped_file}")
    return metrics
