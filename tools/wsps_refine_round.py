#!/usr/bin/env python
"""
WSPS §3.4: make round k+1 pseudo masks of a training set from a trained model's predictions on it.

    python tools/infer_train_set.py --config-file CFG --dataset coco_tiny_train_box MODEL.WEIGHTS model_final.pth \
        --out output/round1/instances_predictions.pth                  # (needs detectron2)
    python tools/wsps_refine_round.py --split train --predictions output/round1/instances_predictions.pth \
        --out output/pseudo/coco_tiny_train_wsps_round1 [--outside background] [--workers 8]

Predictions (``--predictions``): infer_train_set.py's ``instances_predictions.pth`` or COCOEvaluator's
``coco_instances_results.json`` (dataset category ids, the default), or COCOEvaluator's ``instances_predictions.pth``
(saved before it maps ids back: pass ``--category-ids contiguous``); or semantic
probabilities (``--semantic-dir``: ``<image_id>.npz`` with ``probs`` (K + 1, H, W), background first).
Steps per image: DenseCRF (DeepLab's parameters; ``--crf-param iterations=5``, ``--no-crf``), thing pixels outside
every box of their class → ignore (``--outside background`` for VOC-like data), instances re-assigned per box,
same-class overlaps → ignore. Writes, like tools/make_pseudo_masks.py: pseudo_masks.json, metrics.json (when the
json has masks), vis/, skipped.json, and semantic/*.png with --save-semantic. A killed run resumes.
"""
import argparse
import logging
import os

from wsis.data.pseudo_store import source_hash_of_file
from wsis.pseudo.job import add_job_arguments, add_source_arguments, parse_key_values, run_job, start_job
from wsis.pseudo.wsps import WSPSRoundGenerator, load_predictions

logger = logging.getLogger("wsis.wsps_refine_round")
DEFAULT_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "coco_tiny")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(p, DEFAULT_ROOT, "train")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--predictions", help="instances_predictions.pth or COCO results json")
    src.add_argument("--semantic-dir", help="folder of <image_id>.npz semantic probabilities")
    p.add_argument("--category-ids", choices=("dataset", "contiguous"), default="dataset",
                   help="the predictions' category ids (default: %(default)s; COCOEvaluator's .pth holds "
                        "contiguous ones)")
    p.add_argument("--outside", choices=("ignore", "background"), default="ignore",
                   help="thing pixels outside their class's boxes (default: %(default)s)")
    p.add_argument("--crf-param", action="append", default=[], metavar="KEY=VALUE",
                   help="DenseCRFParams field (json value), e.g. iterations=5")
    p.add_argument("--no-crf", action="store_true")
    p.add_argument("--out", required=True)
    add_job_arguments(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    json_file, gt_dicts, box_dicts, meta = start_job(args)
    crf = False if args.no_crf else parse_key_values(args.crf_param, "--crf-param")
    if args.predictions:
        id_map = meta["thing_dataset_id_to_contiguous_id"] if args.category_ids == "dataset" else None
        generator = WSPSRoundGenerator(predictions=load_predictions(args.predictions, id_map), outside=args.outside,
                                       crf=crf)
        extra = {"predictions": os.path.abspath(args.predictions),
                 "predictions_hash": source_hash_of_file(args.predictions)}
    else:
        generator = WSPSRoundGenerator(semantic_dir=os.path.abspath(args.semantic_dir), outside=args.outside, crf=crf)
        extra = {"predictions": os.path.abspath(args.semantic_dir)}
    return run_job(args, "wsps_round", generator, json_file, gt_dicts, box_dicts, meta, **extra)


if __name__ == "__main__":
    main()
