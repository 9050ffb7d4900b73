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
into the same folder (one task per node); a last run without them writes the complete panoptic.json.
``--num-gpus N`` runs one process per device under detectron2's ``launch`` (rank r labels shard r), and the main
process writes panoptic.json and metrics.json when all are done.
"""
import argparse
import logging
import os
import sys

from wsis.pseudo.job import add_launch_arguments, add_shard_arguments, launch_job


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True)
    p.add_argument("--json", required=True, help="COCO json of the training images (categories with isthing)")
    p.add_argument("--images", required=True, help="image folder of --json")
    p.add_argument("--out", required=True, help="the next round's label folder")
    add_shard_arguments(p, "label")
    p.add_argument("--overwrite", action="store_true", help="replace a folder made with other weights")
    p.add_argument("--no-progress", action="store_true")
    add_launch_arguments(p)
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, e.g. MODEL.WEIGHTS path.pth")
    return p.parse_args(argv)


def config(args):
    """The model's config: --config-file with the overrides."""
    from detectron2.config import get_cfg

    from wsis.config import add_wsis_config

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    return cfg


def run(args):
    """The job in this process: all images, a --num-shards shard, or rank r of W under ``launch`` (shard r of W,
    the main process writing panoptic.json and metrics.json once every rank is done)."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.utils import comm
    from detectron2.utils.logger import setup_logger

    import wsis.modeling  # noqa: F401  (registers every wsis model part and builtin dataset)
    from wsis.core.io import atomic_write_json, sha256_file
    from wsis.data.coco_weak import AnnotationError, load_coco_instances
    from wsis.engine import WSISTrainer
    from wsis.methods.panoptic.label_job import QUALITY_KEYS, label_quality, write_panoptic_json
    from wsis.methods.panoptic.pseudo_labels import panoptic_categories
    from wsis.methods.panoptic.round_job import make_next_round_labels

    setup_logger(name="wsis")
    logger = logging.getLogger("wsis.wsps_panoptic_round")
    rank, world = comm.get_rank(), comm.get_world_size()
    shards, index = (world, rank) if world > 1 else (args.num_shards, args.shard_index)
    cfg = config(args)
    try:
        dicts, meta = load_coco_instances(args.json, args.images, supervision="mask", on_bad="warn")
        categories, isthing = panoptic_categories(args.json, meta)
        model = WSISTrainer.build_model(cfg)
        DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
        params = {"weights": os.path.abspath(cfg.MODEL.WEIGHTS), "weights_sha256": sha256_file(cfg.MODEL.WEIGHTS),
                  "config": os.path.abspath(args.config_file), "opts": list(args.opts)}
        n = make_next_round_labels(cfg, model, dicts, isthing, categories, args.out, params,
                                   progress=not args.no_progress and comm.is_main_process(),
                                   overwrite=args.overwrite, num_shards=shards, shard_index=index,
                                   write_json=world == 1)
    except (ValueError, KeyError, FileNotFoundError, AnnotationError) as e:
        sys.exit(f"error: {e}")
    if world > 1:
        n = sum(comm.all_gather(n))  # returns once every rank has written its labels
        if not comm.is_main_process():
            return None
        write_panoptic_json(dicts, categories, args.out)
    metrics = {"num_images": len(dicts), "labelled_now": n}
    if any("segmentation" in a for d in dicts for a in d["annotations"]):
        metrics.update(label_quality(args.out, dicts, isthing))
        logger.info("next-round labels vs the json's segments: " + ", ".join(
            f"{k} {metrics[k]:.1f}" for k in QUALITY_KEYS) + f", void {metrics['void_fraction']:.3f}")
    atomic_write_json(metrics, os.path.join(args.out, "metrics.json"), indent=2)
    return metrics


def main(argv=None):
    args = parse_args(argv)
    weights = config(args).MODEL.WEIGHTS
    if not os.path.isfile(weights):
        sys.exit(f"error: MODEL.WEIGHTS {weights!r} is not a file; give the trained model's checkpoint")
    return launch_job(run, args)
