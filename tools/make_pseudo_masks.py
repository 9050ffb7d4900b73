#!/usr/bin/env python
"""
Generate pseudo masks for a COCO-style dataset from its boxes, with quality figures and overlay pictures.

    python tools/make_pseudo_masks.py                                   # ../shared/data/coco_tiny val, box-fill
    python tools/make_pseudo_masks.py --coco-root /data/coco --split train --method boxfill --workers 8
    python tools/make_pseudo_masks.py --json ann.json --images img_dir --out output/pseudo/mine

Writes, under --out:
    pseudo_masks.json   the pseudo-mask store (wsis.data.pseudo_store format), to train on with
                        WSIS.DATA.PSEUDO_MASKS
    metrics.json        pseudo-mask quality against the json's masks, when it has masks
    vis/*.jpg           overlays of --num-vis images: boxes, masks, ignore regions in grey
    skipped.json        images that could not be processed (if any), with the reason

A killed run resumes where it stopped when started again with the same arguments.
"""
import argparse
import json
import logging
import os
import sys

import cv2

from wsis import __version__
from wsis.data.coco_weak import load_coco_instances
from wsis.data.pseudo_store import load_pseudo_masks, make_provenance, source_hash_of_file
from wsis.data.weak import to_box_supervision
from wsis.evaluation.pseudo_eval import evaluate_pseudo_masks
from wsis.pseudo import PSEUDO_MASK_GENERATORS, build_generator, run_generator
from wsis.utils.io import atomic_write_json
from wsis.utils.visualize import draw_pseudo_masks

logger = logging.getLogger("wsis.make_pseudo_masks")

DEFAULT_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "coco_tiny")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("source dataset (COCO style)")
    src.add_argument("--coco-root", default=os.environ.get("WSIS_COCO_ROOT", DEFAULT_ROOT),
                     help="folder with annotations/instances_<split>2017.json and <split>2017/ (default: %(default)s)")
    src.add_argument("--split", default="val", help="split under --coco-root (default: %(default)s)")
    src.add_argument("--json", help="COCO instances json (overrides --coco-root/--split)")
    src.add_argument("--images", help="image folder of --json")
    p.add_argument("--method", default="boxfill", choices=sorted(PSEUDO_MASK_GENERATORS),
                   help="pseudo-mask generator (default: %(default)s)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="generator parameter (json value), repeatable, e.g. --param overlap='\"smallest\"'")
    p.add_argument("--out", default="output/pseudo/coco_tiny_val_boxfill", help="output folder (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="processes (default: %(default)s)")
    p.add_argument("--num-vis", type=int, default=8, help="overlay pictures to write (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="start again instead of resuming / refusing")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s", datefmt="%H:%M:%S")
    json_file = args.json or os.path.join(args.coco_root, "annotations", f"instances_{args.split}2017.json")
    image_root = args.images or os.path.join(args.coco_root, f"{args.split}2017")
    if not os.path.isfile(json_file):
        sys.exit(f"error: {json_file} does not exist; pass --coco-root or --json/--images")

    gt_dicts, meta = load_coco_instances(json_file, image_root, supervision="mask", on_bad="warn")
    box_dicts = to_box_supervision(gt_dicts)  # what a generator sees: boxes and classes, no masks
    params = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.param)}
    generator = build_generator(args.method, **params)
    provenance = make_provenance(args.method, generator.params, source=os.path.abspath(json_file),
                                 source_hash=source_hash_of_file(json_file))

    os.makedirs(args.out, exist_ok=True)
    out_file = os.path.join(args.out, "pseudo_masks.json")
    skipped = run_generator(box_dicts, generator, out_file, provenance, workers=args.workers,
                            progress=not args.no_progress, overwrite=args.overwrite)
    skipped_file = os.path.join(args.out, "skipped.json")
    if skipped:
        atomic_write_json([{"image_id": i, "reason": r} for i, r in skipped], skipped_file, indent=1)
    elif os.path.exists(skipped_file):
        os.remove(skipped_file)

    _, records = load_pseudo_masks(out_file, box_dicts)
    metrics = evaluate_pseudo_masks(records, gt_dicts)
    metrics.update({"method": args.method, "params": generator.params, "source": json_file,
                    "num_images": len(records), "num_skipped": len(skipped), "wsis_version": __version__})
    atomic_write_json(metrics, os.path.join(args.out, "metrics.json"), indent=2)

    vis_dir = os.path.join(args.out, "vis")
    os.makedirs(vis_dir, exist_ok=True)
    by_id = {d["image_id"]: d for d in box_dicts}
    for image_id in sorted(records)[: args.num_vis]:
        image = cv2.imread(by_id[image_id]["file_name"], cv2.IMREAD_COLOR)
        if image is None:
            logger.warning(f"image id {image_id}: cannot read {by_id[image_id]['file_name']}, no overlay")
            continue
        overlay = draw_pseudo_masks(image, records[image_id], meta["thing_classes"])
        cv2.imwrite(os.path.join(vis_dir, f"{image_id}.jpg"), overlay)

    logger.info(f"pseudo masks: {out_file}")
    logger.info("quality: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if isinstance(v, float)))
    if skipped:
        logger.warning(f"{len(skipped)} image(s) skipped, listed in {skipped_file}")
    return metrics


if __name__ == "__main__":
    main()
