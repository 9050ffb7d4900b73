"""
Compute the localisation cues (CAM or Grad-CAM) of every image of a COCO-style dataset with a trained
``CAMClassifier`` into a cue store, with their localisation quality when the json has masks.

    python tools/make_cues.py --config-file projects/CAM/configs/cam_R18_scratch_copy_paste.yaml \\
        --json datasets/copy_paste_coco_tiny/annotations/instances_train.json \\
        --images datasets/copy_paste_coco_tiny/train --out output/cues/copy_paste_train_cam \\
        MODEL.WEIGHTS output/cam_R18_scratch_copy_paste/model_final.pth
    python tools/make_cues.py --method gradcam ...                 # Grad-CAM (WSPS §3.3)
    python tools/make_cues.py ... MODEL.CAM.SCALES "(1.0,)" MODEL.CAM.FLIP False   # single scale
    python tools/make_cues.py ... MODEL.CAM.CUE_CLASSES predicted  # images without tags: the predicted classes

Config overrides are ``KEY VALUE`` pairs merged after ``--config-file`` (the classifier's config), as in
``tools/train_net.py``. The classes of an image come from its tags (the json's annotations or ``image_labels``).

Large datasets: ``--num-shards K --shard-index i`` makes shard i into its own resumable store; ``--merge SHARD ...
--out OUT`` merges them into the store one run writes, byte for byte; ``--num-gpus N`` runs one process per device
under detectron2's launch.

Writes, under --out:
    cues.json, maps/<image_id>.npz   the cue store (wsis.data.cue_store: float16 maps at MODEL.CAM.CUE_STRIDE)
    metrics.json                     images, skipped, bytes per image, and (json with masks) the cues' mIoU at the
                                     best background threshold next to a centre-Gaussian prior's
    skipped.json                     images that could not be processed, with the reason (if any)

A killed run resumes where it stopped with the same arguments, and its store is the same byte for byte.
"""
import argparse
import logging
import os
import sys
import time

from wsis.config import add_wsis_config
from wsis.core.config import add_overrides_argument, parse_args_with_overrides
from wsis.data.coco_weak import AnnotationError, load_coco_instances
from wsis.data.cue_store import CueStoreError
from wsis.pseudo.job import add_launch_arguments, job_info, launch_job, run_distributed_job, run_job, setup_logging
from wsis.pseudo.shards import merge_shards

logger = logging.getLogger("wsis.make_cues")
METHODS = ("cam", "gradcam")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", required=True, help="COCO instances json of the images (tags from its annotations)")
    p.add_argument("--images", required=True, help="image folder of --json")
    p.add_argument("--method", default="cam", choices=METHODS, help="cue (default: %(default)s)")
    p.add_argument("--config-file", required=True, metavar="FILE", help="the trained CAMClassifier's config")
    p.add_argument("--out", default=None, help="the store folder (default: output/cues/<json name>_<method>)")
    p.add_argument("--merge", nargs="+", metavar="SHARD", help="merge these shard stores into --out and stop")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes, one torch thread each (default: %(default)s; the output does not depend on it)")
    p.add_argument("--num-shards", type=int, default=1)
    p.add_argument("--shard-index", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="start again instead of resuming / refusing")
    p.add_argument("--no-progress", action="store_true")
    add_launch_arguments(p)
    add_overrides_argument(p, help="config overrides")
    return parse_args_with_overrides(p, argv)


def _default_out(args):
    out = os.path.join("output", "cues", f"{os.path.splitext(os.path.basename(args.json))[0]}_{args.method}")
    if args.num_shards > 1:
        out = os.path.join(out, f"shard_{args.shard_index}_of_{args.num_shards}")
    return out


def _outputs(args, store_dir, skipped, dicts, gt_dicts, meta, provenance, generator):
    from wsis.methods.cam.cue_outputs import write_cue_outputs

    info = dict(job_info(provenance), seconds=round(time.time() - args.start_time, 1))
    return write_cue_outputs(args.out, store_dir, skipped, dicts, gt_dicts, len(meta["thing_classes"]), info)


def run(args):
    """One process of the job (all of it, a shard, or a rank under ``launch``)."""
    from detectron2.config import get_cfg

    from wsis.methods.cam.generator import CueGenerator
    from wsis.pseudo.runner import CUES

    setup_logging()
    args.start_time = time.time()
    if not os.path.isfile(args.json):
        sys.exit(f"error: {args.json} does not exist")
    gt_dicts, meta = load_coco_instances(args.json, args.images, supervision="mask", on_bad="warn")
    try:  # a user's mistake in the options: one line, no traceback
        cfg = add_wsis_config(get_cfg())
        cfg.merge_from_file(args.config_file)
        cfg.merge_from_list(args.opts)
        generator = CueGenerator.from_config(cfg, args.method, {"config_file": args.config_file, "opts": args.opts,
                                                                "config_keys": add_wsis_config})
    except (ValueError, KeyError, AssertionError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    job = run_distributed_job if args.num_gpus * args.num_machines > 1 else run_job
    return job(args, args.method, generator, args.json, gt_dicts, gt_dicts, meta, store=CUES, store_name="",
               outputs=_outputs)


def main(argv=None):
    args = parse_args(argv)
    args.out = args.out or _default_out(args)
    try:
        if args.merge:
            setup_logging()
            merge_shards(args.merge, args.out, overwrite=args.overwrite, store="cues")
            return {}
        return launch_job(run, args)
    except (CueStoreError, AnnotationError) as e:
        sys.exit(f"error: {e}")
