"""
A trained DSRG model's final labels of a dataset (DSRG's "+Retrain" stage, Tab. 2): its softmax restricted to each
image's tags, refined by DenseCRF, as ``<out>/<image_id>.png`` (0 background, class + 1), the format that
``WSIS.DATA.SEMANTIC_LABELS`` trains on and other methods read; with their quality when the json has masks.

    python tools/make_dsrg_labels.py --config-file projects/DSRG/configs/dsrg_R18_scratch_copy_paste.yaml \\
        --json datasets/copy_paste_coco_tiny/annotations/instances_train.json \\
        --images datasets/copy_paste_coco_tiny/train --out output/dsrg/final_labels \\
        MODEL.WEIGHTS output/dsrg_R18_scratch_copy_paste/model_final.pth

``--grown-from SEEDS`` writes the seeds grown on the model's (tag-restricted, CRF-refined) probabilities instead
(DSRG §3.3 at full resolution: how far growing takes the seeds). Writes ``params.json`` (checkpoint and its
sha256, settings), ``metrics.json`` and ``skipped.json`` (if any). A killed run resumes; finished maps are kept.
``--num-shards K --shard-index i`` labels shard i into the same --out folder (one task per node or GPU); a last run
without the two flags writes the metrics of all (nothing is remade).
"""
import argparse
import logging
import os
import sys

from wsis.config import add_wsis_config
from wsis.core.config import add_overrides_argument, parse_args_with_overrides
from wsis.core.io import atomic_write_json
from wsis.data.coco_weak import AnnotationError, load_coco_instances
from wsis.methods.cam.label_job import label_quality
from wsis.pseudo.job import add_shard_arguments, setup_logging
from wsis.pseudo.label_folder import missing_maps

logger = logging.getLogger("wsis.make_dsrg_labels")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True, metavar="FILE", help="the model's config")
    p.add_argument("--json", required=True, help="COCO instances json of the images (their tags: image_labels)")
    p.add_argument("--images", required=True, help="image folder of --json")
    p.add_argument("--out", required=True, help="label folder")
    p.add_argument("--no-crf", action="store_true", help="no DenseCRF (the arg max of the restricted softmax)")
    p.add_argument("--grown-from", default=None, metavar="SEEDS",
                   help="write the seeds of this folder grown on the model's probabilities (MODEL.DSRG.GROWING and "
                        "thresholds) instead of the final labels; unlabelled pixels stay 255")
    add_shard_arguments(p, "label")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    add_overrides_argument(p, help="config overrides (MODEL.WEIGHTS ...)")
    return parse_args_with_overrides(p, argv)


def main(argv=None):
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    import wsis.modeling  # noqa: F401  (registers DSRGHead / DSRGSemanticSegmentor)
    from wsis.methods.dsrg.final_labels import make_final_labels

    args = parse_args(argv)
    setup_logging()
    try:
        cfg = add_wsis_config(get_cfg())
        cfg.merge_from_file(args.config_file)
        cfg.merge_from_list(args.opts)
        if not os.path.isfile(cfg.MODEL.WEIGHTS):
            raise FileNotFoundError(f"MODEL.WEIGHTS {cfg.MODEL.WEIGHTS!r} is not a file")
        dicts, meta = load_coco_instances(args.json, args.images, supervision="mask", on_bad="warn")
        model = build_model(cfg)
        DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
        skipped = make_final_labels(cfg, model, dicts, args.out, cfg.MODEL.WEIGHTS, crf=not args.no_crf,
                                    progress=not args.no_progress, overwrite=args.overwrite,
                                    seeds_dir=args.grown_from, num_shards=args.num_shards,
                                    shard_index=args.shard_index)
    except (ValueError, KeyError, AssertionError, FileNotFoundError, AnnotationError) as e:
        sys.exit(f"error: {e}")
    metrics = {"num_images": len(dicts) - len(missing_maps(args.out, dicts)), "num_skipped": len(skipped)}
    if any("segmentation" in a for d in dicts for a in d["annotations"]):
        metrics.update(label_quality(args.out, dicts, meta["thing_classes"]))
        logger.info(f"final labels vs true masks: mIoU {metrics['miou']:.3f}, precision {metrics['precision']:.3f}")
    atomic_write_json(metrics, os.path.join(args.out, "metrics.json"), indent=2)
    return metrics
