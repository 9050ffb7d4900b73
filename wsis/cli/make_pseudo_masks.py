"""
Generate pseudo masks for a COCO-style dataset with any registered generator, with quality figures and overlays.

    python tools/make_pseudo_masks.py                                   # ../shared/data/coco_tiny val, wsps
    python tools/make_pseudo_masks.py --coco-root /data/coco --split train --workers 8
    python tools/make_pseudo_masks.py --method boxfill --out output/pseudo/coco_tiny_val_boxfill
    python tools/make_pseudo_masks.py WSIS.PSEUDO.WSPS.REFINE none      # WSPS iteration-0 labels (with ignore)
    python tools/make_pseudo_masks.py WSIS.PSEUDO.WSPS.REFINE crf       # ... their ignored pixels filled by DenseCRF
    python tools/make_pseudo_masks.py --method wsps_round --split train \\
        WSIS.PSEUDO.WSPS_ROUND.PREDICTIONS output/round1/instances_predictions.pth   # WSPS §3.4, round k + 1
    python tools/make_pseudo_masks.py --method boxcaseg --split train \\
        --config-file projects/BoxCaseg/configs/boxcaseg_coco_tiny_instant_test.yaml \\
        MODEL.WEIGHTS output/boxcaseg_coco_tiny_instant_test/model_final.pth   # BoxCaseg proxy masks (detectron2)
    python tools/make_pseudo_masks.py --json ann.json --images img_dir --out output/pseudo/mine

Method options are ``KEY VALUE`` overrides of a yacs config (``WSIS.PSEUDO.<METHOD>.*``; ``--config-file`` merges
a yaml first), as in ``tools/train_net.py``. Methods: boxfill, wsps, wsps_round, boxcaseg, irnet
(:mod:`wsis.methods.generators`). irnet makes instances from image tags (CAM cues + a trained IRNet):

    python tools/make_pseudo_masks.py --method irnet --json train.json --images train/ \
        --config-file projects/IRNet/configs/irnet_R18_scratch_copy_paste.yaml \
        MODEL.WEIGHTS output/irnet/model_final.pth WSIS.IRNET.CUES output/cues/train_cam

Large datasets:
    --num-shards K --shard-index i    make shard i of K (a deterministic split by image id) into its own resumable
                                      store, e.g. one task of a SLURM array (default --out gets /shard_<i>_of_<K>)
    --merge SHARD.json ... --out OUT  merge the K shard stores into the store one run writes, byte for byte (OUT: a
                                      .json file, or a folder that also gets metrics.json, vis/ for the source)
    --num-gpus N [--num-machines M --machine-rank R --dist-url URL]
                                      one process per device under detectron2's launch, gathered into one store

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
import sys

import wsis.methods.generators  # noqa: F401  (registers every built-in generator)
from wsis.config import add_wsis_config
from wsis.core.config import add_overrides_argument, parse_args_with_overrides
from wsis.data.pseudo_store import PseudoMaskError
from wsis.pseudo import PSEUDO_MASK_GENERATOR_REGISTRY, generator_from_config
from wsis.pseudo.job import (
    add_job_arguments,
    add_launch_arguments,
    add_source_arguments,
    job_info,
    launch_job,
    load_source,
    run_distributed_job,
    run_job,
    setup_logging,
    start_job,
)
from wsis.pseudo.outputs import write_job_outputs
from wsis.pseudo.shards import merge_shards

logger = logging.getLogger("wsis.make_pseudo_masks")

#: ``../shared/data/coco_tiny`` next to the repository (this file is wsis/cli/make_pseudo_masks.py)
DEFAULT_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data", "coco_tiny")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(p, DEFAULT_ROOT, "val")
    p.add_argument("--method", default="wsps", choices=PSEUDO_MASK_GENERATOR_REGISTRY.names(),
                   help="pseudo-mask generator (default: %(default)s: GrabCut and a segment proposal per box, "
                        "WSPS §3.2, settled by a vote with the box's ellipse)")
    p.add_argument("--config-file", default="", metavar="FILE", help="yaml merged into the config first (boxcaseg: "
                   "the trained model's config)")
    p.add_argument("--out", default=None,
                   help="output folder (default: output/pseudo/<dataset>_<method>, <dataset> = the --json file's "
                        "name or <coco-root name>_<split>)")
    p.add_argument("--merge", nargs="+", metavar="SHARD", help="merge these shard stores into --out and stop")
    add_job_arguments(p)
    add_launch_arguments(p)
    add_overrides_argument(p, help="config overrides, e.g. WSIS.PSEUDO.WSPS.REFINE none")
    args = parse_args_with_overrides(p, argv)
    if args.merge and not args.out:
        p.error("--merge needs --out (a .json file, or a folder)")
    return args


def build_config(args):
    """The yacs config of ``args.method``: detectron2's when the generator needs it, else a plain fvcore CfgNode."""
    cls = PSEUDO_MASK_GENERATOR_REGISTRY.get(args.method)
    if getattr(cls, "needs_detectron2_config", False):
        from detectron2.config import get_cfg

        import wsis.modeling  # noqa: F401  (every wsis head a generator's model may name, e.g. ccgr's branch)

        cfg = get_cfg()
    else:
        from fvcore.common.config import CfgNode

        cfg = CfgNode()
    add_wsis_config(cfg)
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    return cfg


def _default_out(args):
    dataset = (os.path.splitext(os.path.basename(args.json))[0] if args.json
               else f"{os.path.basename(os.path.normpath(args.coco_root))}_{args.split}")
    out = os.path.join("output", "pseudo", f"{dataset}_{args.method}")
    if args.num_shards > 1:
        out = os.path.join(out, f"shard_{args.shard_index}_of_{args.num_shards}")
    return out


def merge(args):
    """``--merge``: the shard stores into one; with a folder --out, also the job's outputs for the source."""
    out_file = args.out if args.out.endswith(".json") else os.path.join(args.out, "pseudo_masks.json")
    provenance, _ = merge_shards(args.merge, out_file, overwrite=args.overwrite)
    if args.out.endswith(".json"):
        return {}
    json_file, gt_dicts, box_dicts, meta = load_source(args)
    if os.path.abspath(json_file) != provenance["source"]:
        logger.warning(f"the shards were made from {provenance['source']}, not {json_file}; metrics use the latter")
    return write_job_outputs(args.out, out_file, [], box_dicts, gt_dicts, meta["thing_classes"], args.num_vis,
                             args.save_semantic, job_info(provenance))


def run(args):
    """One process of the job (all of it, a shard, or a rank under ``launch``)."""
    json_file, gt_dicts, box_dicts, meta = start_job(args)
    try:  # a user's mistake in the options: one line, no traceback
        cfg = build_config(args)
        context = dict(meta, config_file=args.config_file, opts=list(args.opts), config_keys=add_wsis_config,
                       out_dir=args.out)
        generator = generator_from_config(args.method, cfg, context)
    except (ValueError, KeyError, AssertionError, FileNotFoundError) as e:  # (yacs asserts on unknown keys)
        sys.exit(f"error: {e}")
    job = run_distributed_job if args.num_gpus * args.num_machines > 1 else run_job
    return job(args, args.method, generator, json_file, gt_dicts, box_dicts, meta)


def main(argv=None):
    args = parse_args(argv)
    args.out = args.out or _default_out(args)
    try:
        if args.merge:
            setup_logging()
            return merge(args)
        return launch_job(run, args)
    except PseudoMaskError as e:
        sys.exit(f"error: {e}")
