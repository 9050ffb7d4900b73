#!/usr/bin/env python
"""
Derive a weakly-annotated COCO json from a fully-annotated one, reproducibly (seeded).

    python tools/derive_weak_dataset.py --json instances_train2017.json --mode box --out train_box.json
    python tools/derive_weak_dataset.py --json instances_train2017.json --mode tag --out train_tag.json
    python tools/derive_weak_dataset.py --json ... --mode semi_images --fraction 0.1 --seed 0 --out train_semi10.json

Modes: box (drop masks), tag (keep image-level labels only, in each image's "image_labels"), semi_images /
semi_instances (keep masks on a seeded fraction of images / instances, boxes elsewhere). Register the output with
``wsis.data.datasets.register_coco_weak``.
"""
import argparse
import logging

from wsis.data.coco_weak import load_coco_instances
from wsis.data.weak import WEAK_MODES, derive_weak_dataset, export_coco_json


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", required=True, help="fully-annotated COCO instances json")
    p.add_argument("--images", default="", help="image folder (only checked with --check-images)")
    p.add_argument("--mode", required=True, choices=WEAK_MODES)
    p.add_argument("--fraction", type=float, default=0.0, help="for semi_*: fraction keeping masks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check-images", action="store_true", help="skip (and report) images whose file is missing")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    dicts, meta = load_coco_instances(args.json, args.images, check_images=args.check_images)
    weak = derive_weak_dataset(dicts, args.mode, fraction=args.fraction, seed=args.seed)
    export_coco_json(weak, meta, args.out)
    n_mask = sum(a["mask_valid"] for d in weak for a in d["annotations"])
    n_inst = sum(len(d["annotations"]) for d in weak)
    logging.getLogger("wsis").info(f"{args.out}: {len(weak)} images, {n_inst} instances, {n_mask} with masks")


if __name__ == "__main__":
    main()
