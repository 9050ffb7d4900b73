#!/usr/bin/env python
"""
BoxCaseg stage 2 (§3.4): proxy masks of every training box from a trained BoxCaseg model, merged ("smaller object
better") and dropped (proxy box agreement), written to the pseudo-mask store for a Proxy Mask R-CNN.

    python tools/make_proxy_masks.py --config-file projects/BoxCaseg/configs/boxcaseg_coco_tiny_instant_test.yaml \
        --weights output/boxcaseg_coco_tiny_instant_test/model_final.pth --split train \
        --out output/boxcaseg_coco_tiny_instant_test/proxy_masks_train [--workers 2] [WSIS.BOXCASEG.DROP_THRESHOLD 0.9]

Writes, like tools/make_pseudo_masks.py: pseudo_masks.json (instance ``score`` = proxy box agreement, dropped masks
``valid: false``), metrics.json (quality when the json has masks), vis/, skipped.json, semantic/ with
--save-semantic. Resumes after a kill; the result does not depend on --workers. Needs detectron2.
"""
import argparse
import logging
import os

from wsis.pseudo.job import add_job_arguments, add_source_arguments, run_job, start_job

logger = logging.getLogger("wsis.make_proxy_masks")
DEFAULT_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "coco_tiny")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True, help="the BoxCaseg model's config")
    p.add_argument("--weights", required=True, help="its checkpoint (model_final.pth)")
    add_source_arguments(p, DEFAULT_ROOT, "train")
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cpu")
    add_job_arguments(p)
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, e.g. WSIS.BOXCASEG.DROP_THRESHOLD 0.9")
    return p.parse_args(argv)


def main(argv=None):
    from wsis.engine.boxcaseg import BoxCasegProxyGenerator  # needs detectron2

    args = parse_args(argv)
    json_file, gt_dicts, box_dicts, meta = start_job(args)
    # one torch thread per process: the output is then the same for any --workers (parallelism = workers)
    generator = BoxCasegProxyGenerator(args.config_file, args.opts, args.weights, threads=1, device=args.device)
    return run_job(args, "boxcaseg", generator, json_file, gt_dicts, box_dicts, meta)


if __name__ == "__main__":
    main()
