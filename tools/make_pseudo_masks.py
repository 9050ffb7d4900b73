#!/usr/bin/env python
"""
Generate pseudo masks for a COCO-style dataset from its boxes, with quality figures and overlay pictures.

    python tools/make_pseudo_masks.py                                   # ../shared/data/coco_tiny val, wsps
    python tools/make_pseudo_masks.py --coco-root /data/coco --split train --workers 8
    python tools/make_pseudo_masks.py --method boxfill --out output/pseudo/coco_tiny_val_boxfill
    python tools/make_pseudo_masks.py --param refine='"none"'           # WSPS iteration-0 labels (with ignore)
    python tools/make_pseudo_masks.py --json ann.json --images img_dir --out output/pseudo/mine

Writes, under --out:
    pseudo_masks.json   the pseudo-mask store (wsis.data.pseudo_store format), to train on with
                        WSIS.DATA.PSEUDO_MASKS
    metrics.json        pseudo-mask quality against the json's masks, when it has masks
    vis/*.jpg           overlays of --num-vis images: boxes, masks, ignore regions in grey
    semantic/*.png      with --save-semantic: semantic pseudo-label maps derived from the store, one per image id
                        (0 background, contiguous class + 1, 255 ignore)
    skipped.json        images that could not be processed (if any), with the reason

A killed run resumes where it stopped when started again with the same arguments.
"""
import argparse
import logging
import os

from wsis.pseudo import PSEUDO_MASK_GENERATORS, build_generator
from wsis.pseudo.job import add_job_arguments, add_source_arguments, parse_key_values, run_job, start_job

logger = logging.getLogger("wsis.make_pseudo_masks")

DEFAULT_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "coco_tiny")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(p, DEFAULT_ROOT, "val")
    p.add_argument("--method", default="wsps", choices=sorted(set(PSEUDO_MASK_GENERATORS) - {"wsps_round"}),
                   help="pseudo-mask generator (default: %(default)s, GrabCut ∩ proposals + DenseCRF, WSPS §3.2)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="generator parameter (json value), repeatable, e.g. --param refine='\"none\"' (wsps) or "
                        "--param overlap='\"smallest\"' (boxfill)")
    p.add_argument("--seed", type=int, default=None, help="random seed of generators that take one (wsps: 0)")
    p.add_argument("--out", default=None,
                   help="output folder (default: output/pseudo/<dataset>_<method>, <dataset> = the --json file's "
                        "name or <coco-root name>_<split>)")
    add_job_arguments(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    json_file, gt_dicts, box_dicts, meta = start_job(args)
    params = parse_key_values(args.param)
    if args.seed is not None:
        params["seed"] = args.seed
    dataset = (os.path.splitext(os.path.basename(args.json))[0] if args.json
               else f"{os.path.basename(os.path.normpath(args.coco_root))}_{args.split}")
    args.out = args.out or os.path.join("output", "pseudo", f"{dataset}_{args.method}")
    generator = build_generator(args.method, **params)
    return run_job(args, args.method, generator, json_file, gt_dicts, box_dicts, meta)


if __name__ == "__main__":
    main()
