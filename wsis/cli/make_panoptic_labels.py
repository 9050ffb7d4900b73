"""
Iteration-0 panoptic pseudo labels (WSPS §3.2-3.3): things from their boxes (the "wsps" box generator, wsis's vote
by default), stuff from the Grad-CAM cues of the image's stuff tags (``tools/make_cues.py --method gradcam``),
written in COCO's panoptic format, with PQ against the json's own segments when it has masks.

    python tools/convert_coco_panoptic.py          # datasets/coco_panoptic_val100_halves (one annotation a segment)
    python tools/make_panoptic_labels.py --json datasets/coco_panoptic_val100_halves/annotations/instances_train.json \\
        --images datasets/coco_panoptic_val100_halves/train --cues output/cues/panoptic_train_gradcam \\
        --out output/panoptic/train_iter0
    python tools/make_panoptic_labels.py ... WSIS.PSEUDO.WSPS.REFINE none      # things by WSPS's fusion
    python tools/make_panoptic_labels.py ... --no-cues                        # things only (stuff void)
    python tools/make_panoptic_labels.py ... --full-fraction 0.5 --seed 0     # WSPS §4: half the images keep their
                                                                              # true labels (seeded), the rest weak

The json's categories say which classes are things (``isthing``). Box generator options are ``KEY VALUE``
overrides of ``WSIS.PSEUDO.WSPS.*``. Writes, under --out: ``<image_id>.png`` (id = R + 256 G + 65536 B, 0 void),
``panoptic.json`` (images, annotations with segments_info, categories: the json's ids), ``segments/``, ``params.json``,
``metrics.json`` (PQ / SQ / RQ for all, things, stuff, and the void fraction, when the json has masks) and
``skipped.json`` (if any). A killed run resumes; finished images are kept.

Large sets: ``--num-shards K --shard-index i`` makes shard i into the same --out folder (e.g. the tasks of a SLURM
array); ``panoptic.json`` and ``metrics.json`` cover the images done when a shard ends, so run the command once more
without the two flags when all have ended: nothing is remade, and both files are then those of a single run.
"""
import argparse
import logging
import os
import sys

from fvcore.common.config import CfgNode

from wsis.config import add_wsis_config
from wsis.core.config import add_overrides_argument, parse_args_with_overrides
from wsis.core.io import atomic_write_json
from wsis.data.coco_weak import AnnotationError, load_coco_instances
from wsis.data.cue_store import CueStore, CueStoreError
from wsis.data.weak import seeded_image_ids
from wsis.methods.panoptic.label_job import QUALITY_KEYS as KEYS
from wsis.methods.panoptic.label_job import label_quality, make_panoptic_labels
from wsis.methods.panoptic.pseudo_labels import panoptic_categories
from wsis.methods.wsps.generator import WSPSGenerator
from wsis.pseudo.job import add_shard_arguments, setup_logging
from wsis.pseudo.label_folder import missing_maps, skip_report_name

logger = logging.getLogger("wsis.make_panoptic_labels")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", required=True, help="COCO json: one annotation per segment, categories with isthing")
    p.add_argument("--images", required=True, help="image folder of --json")
    p.add_argument("--cues", default=None, help="cue store of the images (tools/make_cues.py --out)")
    p.add_argument("--no-cues", action="store_true", help="things only: every pixel no thing claims is void")
    p.add_argument("--out", required=True, help="label folder")
    p.add_argument("--stuff-threshold", type=float, default=0.5, help="fraction of each stuff cue's max (WSPS 0.5)")
    p.add_argument("--full-fraction", type=float, default=0.0,
                   help="semi-supervised (WSPS §4): a seeded fraction of the images keeps its true panoptic labels")
    p.add_argument("--seed", type=int, default=0, help="the seed of --full-fraction's choice (default: %(default)s)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: %(default)s)")
    add_shard_arguments(p)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    add_overrides_argument(p, help="WSIS.PSEUDO.WSPS overrides")
    args = parse_args_with_overrides(p, argv)
    if bool(args.cues) == args.no_cues:
        p.error("give --cues DIR, or --no-cues for things only")
    return args


def main(argv=None):
    args = parse_args(argv)
    setup_logging()
    try:
        cfg = add_wsis_config(CfgNode())
        cfg.merge_from_list(args.opts)
        generator = WSPSGenerator.from_config(cfg)
        dicts, meta = load_coco_instances(args.json, args.images, supervision="mask", on_bad="warn")
        categories, isthing = panoptic_categories(args.json, meta)
        cues = None if args.no_cues else CueStore(args.cues)
        full_ids = sorted(seeded_image_ids(dicts, args.full_fraction, args.seed))
        skipped = make_panoptic_labels(dicts, generator, cues, isthing, categories, args.out, args.stuff_threshold,
                                       workers=args.workers, progress=not args.no_progress, overwrite=args.overwrite,
                                       full_ids=full_ids, num_shards=args.num_shards, shard_index=args.shard_index)
    except (ValueError, KeyError, FileNotFoundError, CueStoreError, AnnotationError) as e:
        sys.exit(f"error: {e}")
    done = len(dicts) - len(missing_maps(args.out, dicts))  # every shard's, when sharded
    metrics = {"num_images": done, "num_skipped": len(skipped), "num_full": len(full_ids)}
    if any("segmentation" in a for d in dicts for a in d["annotations"]):
        metrics.update(label_quality(args.out, dicts, isthing))
        logger.info("panoptic labels vs the json's segments: " + ", ".join(f"{k} {metrics[k]:.1f}" for k in KEYS)
                    + f", void {metrics['void_fraction']:.3f}")
    atomic_write_json(metrics, os.path.join(args.out, "metrics.json"), indent=2)
    if skipped:
        logger.warning(f"{len(skipped)} image(s) skipped, listed in "
                       f"{os.path.join(args.out, skip_report_name(args.num_shards, args.shard_index))}")
    return metrics
