"""
Semantic pseudo labels from a cue store (``tools/make_cues.py``): each image's cues thresholded into a uint8 label
map ``<out>/<image_id>.png`` (0 background, class + 1, 255 ignore) that a ``SemanticSegmentor`` trains on
(``WSIS.DATA.SEMANTIC_LABELS``), with their quality against true masks when the json has them.

    python tools/make_semantic_labels.py --cues output/cues/copy_paste_train_cam \\
        --json datasets/copy_paste_coco_tiny/annotations/instances_train.json \\
        --images datasets/copy_paste_coco_tiny/train --out output/labels/copy_paste_train_irnet
    python tools/make_semantic_labels.py ... WSIS.CAM.LABELS wsps           # WSPS §3.3: 50 % of each class's max
    python tools/make_semantic_labels.py ... WSIS.CAM.CRF False             # IRNet's thresholds without the CRF
    python tools/make_semantic_labels.py ... WSIS.CAM.LABELS dsrg           # DSRG §3.1 seeds (WSIS.DSRG.SEEDS.*)

Label settings are ``KEY VALUE`` overrides of ``WSIS.CAM.*`` (``--config-file`` merges a yaml first):
IRNet §4.2 ("irnet", default): confident foreground where a class's cue exceeds FG_THRESHOLD (0.30), confident
background where all are below BG_THRESHOLD (0.05), each area refined by DenseCRF, ignore in between.
DSRG §3.1 ("dsrg"): seeds for ``DSRGHead``: each class ≥ WSIS.DSRG.SEEDS.FG_THRESHOLD (0.2) × its max, background
from low CAM (BACKGROUND low_cam, BG_THRESHOLD) or a saliency folder (BACKGROUND saliency, SALIENCY_DIR).

Writes, under --out: ``<image_id>.png``, ``params.json`` (the cue store's provenance and the settings),
``metrics.json`` (pixel precision / recall, fraction ignored, mIoU, confident fg / bg precision and recall, when
the json has masks) and ``skipped.json`` (if any). A killed run resumes; finished maps are kept.
Large sets: ``--num-shards K --shard-index i`` makes shard i into the same --out folder (e.g. the tasks of an array
job; each keeps its own skip report); ``metrics.json`` covers the maps done when a shard ends, so run once more
without the two flags when all have ended (nothing is remade).
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
from wsis.methods.cam.label_job import LabelSettings, label_quality, make_semantic_labels
from wsis.methods.dsrg.seeds import SeedSettings
from wsis.pseudo.job import add_shard_arguments, setup_logging
from wsis.pseudo.label_folder import missing_maps, skip_report_name

logger = logging.getLogger("wsis.make_semantic_labels")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cues", required=True, help="the cue store folder (tools/make_cues.py --out)")
    p.add_argument("--json", required=True, help="COCO instances json of the images")
    p.add_argument("--images", required=True, help="image folder of --json")
    p.add_argument("--out", default=None, help="label folder (default: output/labels/<cue folder name>_<labels>)")
    p.add_argument("--config-file", default="", metavar="FILE", help="yaml with WSIS.CAM keys merged first")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: %(default)s)")
    add_shard_arguments(p)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    add_overrides_argument(p, help="WSIS.CAM / WSIS.DSRG overrides")
    return parse_args_with_overrides(p, argv)


def main(argv=None):
    args = parse_args(argv)
    setup_logging()
    try:
        cfg = add_wsis_config(CfgNode())
        if args.config_file:
            cfg.merge_from_file(args.config_file)
        cfg.merge_from_list(args.opts)
        settings = SeedSettings.from_config(cfg) if cfg.WSIS.CAM.LABELS == "dsrg" else LabelSettings.from_config(cfg)
        out = args.out or os.path.join("output", "labels",
                                       f"{os.path.basename(os.path.normpath(args.cues))}_{settings.method}")
        dicts, meta = load_coco_instances(args.json, args.images, supervision="mask", on_bad="warn")
        store = CueStore(args.cues)
        skipped = make_semantic_labels(store, dicts, out, settings, workers=args.workers,
                                       progress=not args.no_progress, overwrite=args.overwrite,
                                       num_shards=args.num_shards, shard_index=args.shard_index)
    except (ValueError, KeyError, AssertionError, FileNotFoundError, CueStoreError, AnnotationError) as e:
        sys.exit(f"error: {e}")
    done = len(dicts) - len(missing_maps(out, dicts))  # every shard's, when sharded
    metrics = {"num_images": done, "num_skipped": len(skipped)}
    if any("segmentation" in a for d in dicts for a in d["annotations"]):
        metrics.update(label_quality(out, dicts, meta["thing_classes"]))
        logger.info(f"labels vs true masks: mIoU {metrics['miou']:.3f}, precision {metrics['precision']:.3f}, "
                    f"recall {metrics['recall']:.3f}, ignored {metrics['fraction_ignored']:.3f}")
    atomic_write_json(metrics, os.path.join(out, "metrics.json"), indent=2)
    if skipped:
        logger.warning(f"{len(skipped)} image(s) skipped, listed in "
                       f"{os.path.join(out, skip_report_name(args.num_shards, args.shard_index))}")
    return metrics
