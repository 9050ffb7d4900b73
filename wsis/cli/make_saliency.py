"""
Salient-object maps of a dataset from a trained BoxCaseg model's fused salient head (the network trained jointly on
box crops and whole salient images such as ECSSD): each image resized to WSIS.BOXCASEG.SALIENT_RESIZE square (the
salient training geometry), its probability resized back and written as ``<out>/<image_id>.png`` (uint8, 255 =
salient, the image's size), the maps DSRG's background seeds read (WSIS.DSRG.SEEDS.BACKGROUND saliency).

    python tools/make_saliency.py --config-file projects/BoxCaseg/configs/boxcaseg_coco_tiny_instant_test.yaml \\
        --json datasets/copy_paste_coco_tiny/annotations/instances_train.json \\
        --images datasets/copy_paste_coco_tiny/train --out output/saliency/copy_paste_train \\
        MODEL.WEIGHTS output/boxcaseg_coco_tiny_instant_test/model_final.pth
    python tools/make_semantic_labels.py --cues output/cues/copy_paste_train_cam --json ... --images ... \\
        WSIS.CAM.LABELS dsrg WSIS.DSRG.SEEDS.BACKGROUND saliency \\
        WSIS.DSRG.SEEDS.SALIENCY_DIR output/saliency/copy_paste_train

Writes, under --out: ``<image_id>.png``, ``params.json`` (config, overrides, checkpoint and its sha256, settings),
``metrics.json`` (with the json's masks: MAE, precision / recall / F-measure (β² 0.3) and mean IoU at 0.5, and the
precision / recall of DSRG's background rule (< 0.06) against the union of each image's object masks, crowds
ignored) and ``skipped.json`` (if any). A killed run resumes; finished maps are kept; a folder made with another
checkpoint or other settings is refused unless --overwrite.
"""
import argparse
import logging
import os
import sys

from wsis.config import add_wsis_config
from wsis.core.config import add_overrides_argument, parse_args_with_overrides
from wsis.core.io import atomic_write_json
from wsis.data.coco_weak import AnnotationError, load_coco_instances
from wsis.methods.boxcaseg.saliency import saliency_quality
from wsis.methods.boxcaseg.saliency_job import BoxCasegSaliency, make_saliency_maps
from wsis.pseudo.job import setup_logging

logger = logging.getLogger("wsis.make_saliency")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True, metavar="FILE", help="the trained BoxCaseg model's config")
    p.add_argument("--json", required=True, help="COCO instances json of the images")
    p.add_argument("--images", required=True, help="image folder of --json")
    p.add_argument("--out", required=True, help="saliency map folder")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default: %(default)s; recorded: the count changes the order of float sums)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    add_overrides_argument(p, help="config overrides (MODEL.WEIGHTS ...)")
    args = parse_args_with_overrides(p, argv)
    if args.threads < 1:
        p.error(f"--threads must be positive, got {args.threads}")
    return args


def main(argv=None):
    from detectron2.config import get_cfg

    args = parse_args(argv)
    setup_logging()
    try:  # a user's mistake (config, checkpoint, json): one line, no traceback
        cfg = add_wsis_config(get_cfg())
        cfg.merge_from_file(args.config_file)
        cfg.merge_from_list(args.opts)
        if not cfg.MODEL.WEIGHTS:
            raise ValueError("MODEL.WEIGHTS is empty: pass the trained BoxCaseg model's checkpoint")
        saliency = BoxCasegSaliency(args.config_file, args.opts, cfg.MODEL.WEIGHTS, threads=args.threads,
                                    device=cfg.MODEL.DEVICE, config_keys=add_wsis_config)
        dicts, _ = load_coco_instances(args.json, args.images, supervision="mask", on_bad="warn")
        skipped = make_saliency_maps(saliency, dicts, args.out, progress=not args.no_progress,
                                     overwrite=args.overwrite)
        metrics = {"num_images": len(dicts) - len(skipped), "num_skipped": len(skipped)}
        if any("segmentation" in a for d in dicts for a in d["annotations"]):
            metrics.update(saliency_quality(args.out, dicts))
        if metrics.get("num_scored"):
            logger.info(f"saliency vs the union of the true masks: MAE {metrics['mae']:.3f}, F-measure "
                        f"{metrics['f_measure']:.3f}, mean IoU {metrics['mean_iou']:.3f}; background seeds (< "
                        f"{metrics['seed_threshold']:g}) precision {metrics['bg_seed_precision']:.3f}")
    except (ValueError, KeyError, AssertionError, FileNotFoundError, AnnotationError) as e:
        sys.exit(f"error: {e}")
    atomic_write_json(metrics, os.path.join(args.out, "metrics.json"), indent=2)
    if skipped:
        logger.warning(f"{len(skipped)} image(s) skipped, listed in {os.path.join(args.out, 'skipped.json')}")
    return metrics
