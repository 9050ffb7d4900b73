"""
The outputs every pseudo-mask command writes next to its store (``tools/make_pseudo_masks.py``,
``tools/wsps_refine_round.py``): the skip report, quality figures, overlay pictures and semantic label maps.
"""
import logging
import os
import sys

import cv2

from wsis import __version__
from wsis.data.coco_weak import load_coco_instances
from wsis.data.pseudo_store import load_pseudo_masks, make_provenance, source_hash_of_file
from wsis.data.weak import to_box_supervision
from wsis.evaluation.pseudo_eval import evaluate_pseudo_masks
from wsis.utils.io import atomic_write_json
from wsis.utils.visualize import draw_pseudo_masks

logger = logging.getLogger(__name__)


def add_source_arguments(parser, default_root, default_split):
    """The source-dataset options of a pseudo-mask command: ``--coco-root``/``--split`` or ``--json``/``--images``."""
    src = parser.add_argument_group("source dataset (COCO style)")
    src.add_argument("--coco-root", default=os.environ.get("WSIS_COCO_ROOT", default_root),
                     help="folder with annotations/instances_<split>2017.json and <split>2017/ (default: %(default)s)")
    src.add_argument("--split", default=default_split, help="split under --coco-root (default: %(default)s)")
    src.add_argument("--json", help="COCO instances json (overrides --coco-root/--split)")
    src.add_argument("--images", help="image folder of --json")


def add_job_arguments(parser):
    """The options every pseudo-mask command shares: workers, overlays, semantic maps, overwrite, progress."""
    parser.add_argument("--save-semantic", action="store_true", help="also write semantic/<image_id>.png label maps")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes (default: the number of CPUs, %(default)s; the output does not depend on it)")
    parser.add_argument("--num-vis", type=int, default=8, help="overlay pictures to write (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="start again instead of resuming / refusing")
    parser.add_argument("--no-progress", action="store_true")


def parse_key_values(pairs, option="--param"):
    """``["key=json value", ...]`` → dict; a malformed pair exits with a message naming the option."""
    import json

    out = {}
    for kv in pairs:
        key, sep, value = kv.partition("=")
        try:
            if not sep or not key:
                raise ValueError("expected KEY=VALUE")
            out[key] = json.loads(value)
        except ValueError as e:
            sys.exit(f"error: {option} {kv!r}: {e} (values are json, e.g. 5, 0.5, '\"none\"', '{{\"a\": 1}}')")
    return out


def start_job(args):
    """Log to the console and load the source dataset (:func:`load_source`) of a pseudo-mask command."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s", datefmt="%H:%M:%S")
    return load_source(args)


def load_source(args):
    """
    Returns:
        (json_file, gt_dicts with masks where the json has them, box_dicts: the same with boxes and classes only
        (what a generator sees), metadata of :func:`wsis.data.coco_weak.load_coco_instances`)
    """
    json_file = args.json or os.path.join(args.coco_root, "annotations", f"instances_{args.split}2017.json")
    image_root = args.images or os.path.join(args.coco_root, f"{args.split}2017")
    if not os.path.isfile(json_file):
        sys.exit(f"error: {json_file} does not exist; pass --coco-root or --json/--images")
    gt_dicts, meta = load_coco_instances(json_file, image_root, supervision="mask", on_bad="warn")
    return json_file, gt_dicts, to_box_supervision(gt_dicts), meta


def run_job(args, method, generator, json_file, gt_dicts, box_dicts, meta, **provenance_extra):
    """
    The whole job of a pseudo-mask command: run ``generator`` over ``box_dicts`` into ``<args.out>/pseudo_masks.json``
    (provenance: method, parameters, the source json and its sha256, ``provenance_extra``; workers, progress,
    resume, overwrite from :func:`add_job_arguments`), then :func:`write_job_outputs`.

    Returns:
        dict: the contents of ``metrics.json``.
    """
    from .runner import run_generator

    provenance = make_provenance(method, generator.params, source=os.path.abspath(json_file),
                                 source_hash=source_hash_of_file(json_file), **provenance_extra)
    os.makedirs(args.out, exist_ok=True)
    out_file = os.path.join(args.out, "pseudo_masks.json")
    skipped = run_generator(box_dicts, generator, out_file, provenance, workers=args.workers,
                            progress=not args.no_progress, overwrite=args.overwrite)
    return write_job_outputs(args.out, out_file, skipped, box_dicts, gt_dicts, meta["thing_classes"], args.num_vis,
                             args.save_semantic, {"method": method, "params": generator.params, "source": json_file,
                                                  **provenance_extra})


def write_job_outputs(out_dir, store_file, skipped, box_dicts, gt_dicts, thing_classes, num_vis=8,
                      save_semantic=False, info=None):
    """
    Args:
        out_dir (str): the job's folder. store_file (str): the pseudo-mask store the job wrote.
        skipped (list[tuple]): ``(image_id, reason)`` from :func:`wsis.pseudo.run_generator`.
        box_dicts (list[dict]): what the generator saw. gt_dicts (list[dict]): the same images with their masks,
            when the source has masks (quality figures are computed only then).
        thing_classes (list[str]): class names for the overlays. num_vis (int): overlays to draw.
        save_semantic (bool): also write ``semantic/<image_id>.png`` (:mod:`wsis.pseudo.wsps.semantic`).
        info (dict): added to ``metrics.json`` (method, parameters, source).

    Writes ``skipped.json`` (if any image was skipped), ``metrics.json``, ``vis/<image_id>.jpg`` and optionally
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

    metrics = {}
    if any("segmentation" in a for d in gt_dicts for a in d["annotations"]):
        metrics.update(evaluate_pseudo_masks(records, gt_dicts))
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
        from .wsps.semantic import write_semantic_pngs

        write_semantic_pngs(records, os.path.join(out_dir, "semantic"))

    logger.info(f"pseudo masks: {store_file}")
    if any(isinstance(v, float) for v in metrics.values()):
        logger.info("quality: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if isinstance(v, float)))
    if num_skipped:
        logger.warning(f"{num_skipped} image(s) skipped, listed in {skipped_file}")
    return metrics
