#!/usr/bin/env python
"""
The next round of WSPS's panoptic labels (§3.4): a trained ``WSPSPanopticNetwork`` labels its training images, a
thing pixel outside every box of its class and a stuff segment of an untagged class become void, and the result
is written as a panoptic label folder (the format of ``tools/make_panoptic_labels.py``; train the next round on it
through ``WSIS.DATA.PANOPTIC_LABELS``). Prints the labels' PQ against the json's segments when it has masks.

    python tools/wsps_panoptic_round.py \\
        --config-file projects/WSPS/configs/panoptic_R18_FPN_scratch_coco_panoptic_halves_crf.yaml \\
        --json datasets/coco_panoptic_val100_halves/annotations/instances_train.json \\
        --images datasets/coco_panoptic_val100_halves/train --out output/panoptic/train_iter1 \\
        MODEL.WEIGHTS output/panoptic_R18_FPN_scratch_coco_panoptic_halves_crf/model_final.pth

Only the json's boxes and the classes of its annotations (tags) are used for the labels; its masks only for PQ.
Needs detectron2. A killed run resumes; finished images are kept. ``--num-shards K --shard-index i`` labels shard i
into the same folder (one task per GPU or node); a last run without them writes the complete panoptic.json.
"""
import argparse
import logging
import os
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True)
    p.add_argument("--json", required=True, help="COCO json of the training images (categories with isthing)")
    p.add_argument("--images", required=True, help="image folder of --json")
    p.add_argument("--out", required=True, help="the next round's label folder")
    p.add_argument("--num-shards", type=int, default=1, help="split the images into K shards (default: %(default)s)")
    p.add_argument("--shard-index", type=int, default=0, help="label only shard i, into the shared --out folder")
    p.add_argument("--overwrite", action="store_true", help="replace a folder made with other weights")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, e.g. MODEL.WEIGHTS path.pth")
    return p.parse_args(argv)


def main(argv=None):
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.utils.logger import setup_logger

    import wsis.modeling  # noqa: F401  (registers every wsis model part and builtin dataset)
    from wsis.config import add_wsis_config
    from wsis.core.io import atomic_write_json, sha256_file
    from wsis.data.coco_weak import AnnotationError, load_coco_instances
    from wsis.engine import WSISTrainer
    from wsis.methods.panoptic.label_job import QUALITY_KEYS, label_quality
    from wsis.methods.panoptic.pseudo_labels import panoptic_categories
    from wsis.methods.panoptic.round_job import make_next_round_labels

    args = parse_args(argv)
    setup_logger(name="wsis")
    logger = logging.getLogger("wsis.wsps_panoptic_round")
    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    if not os.path.isfile(cfg.MODEL.WEIGHTS):
        sys.exit(f"error: MODEL.WEIGHTS {cfg.MODEL.WEIGHTS!r} is not a file; give the trained model's checkpoint")
    try:
        dicts, meta = load_coco_instances(args.json, args.images, supervision="mask", on_bad="warn")
        categories, isthing = panoptic_categories(args.json, meta)
        model = WSISTrainer.build_model(cfg)
        DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
        params = {"weights": os.path.abspath(cfg.MODEL.WEIGHTS), "weights_sha256": sha256_file(cfg.MODEL.WEIGHTS),
                  "config": os.path.abspath(args.config_file), "opts": list(args.opts)}
        n = make_next_round_labels(cfg, model, dicts, isthing, categories, args.out, params,
                                   progress=not args.no_progress, overwrite=args.overwrite,
                                   num_shards=args.num_shards, shard_index=args.shard_index)
    except (ValueError, KeyError, FileNotFoundError, AnnotationError) as e:
        sys.exit(f"error: {e}")
    metrics = {"num_images": len(dicts), "labelled_now": n}
    if any("segmentation" in a for d in dicts for a in d["annotations"]):
        metrics.update(label_quality(args.out, dicts, isthing))
        logger.info("next-round labels vs the json's segments: " + ", ".join(
            f"{k} {metrics[k]:.1f}" for k in QUALITY_KEYS) + f", void {metrics['void_fraction']:.3f}")
    atomic_write_json(metrics, os.path.join(args.out, "metrics.json"), indent=2)
    return metrics


if __name__ == "__main__":
    main()
