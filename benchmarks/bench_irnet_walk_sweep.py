#!/usr/bin/env python
"""
Why IRNet's random walk helps or hurts on a set (needs detectron2): for the first N training images, the trained
network's class-boundary map B on the true class boundaries against elsewhere (on the 1/4 grid), and the semantic
pseudo labels' mIoU (background included, against the true maps) for walks of several lengths t and several
background thresholds. t = 0 is the CAM damped by (1 − B), without the walk. With ``--instances`` also the instance
pseudo labels' AP^r (IRNet's whole synthesis, background 0.25) per t, beside the CAM-components baseline on the same
images; ``--oracle-boundary`` replaces B by the true class boundaries (1 on the boundary cells, 0 elsewhere; the
network's displacement field stays): what the walk gives when the boundary map is right.

    python benchmarks/bench_irnet_walk_sweep.py --weights output/bench_irnet/irnet/model_final.pth \
        --cues output/bench_cam/copy_paste/cues_train_cam [--images 40] [--opts MODEL.IRNET.FREEZE_BACKBONE False]
    python benchmarks/bench_irnet_walk_sweep.py ... --num-images 300 --instances [--oracle-boundary]

The set defaults to the copy-paste train split (its json, images and semantic PNGs).
"""
import argparse
import dataclasses
import os
import sys

import cv2
import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from wsis.data.coco_weak import load_coco_instances  # noqa: E402
from wsis.evaluation.pseudo_quality import PseudoPixelQualityAccumulator  # noqa: E402
from wsis.methods.cam.localization import upsample_cams  # noqa: E402
from wsis.methods.irnet.instances import semantic_from_scores  # noqa: E402
from wsis.methods.irnet.walk import random_walk  # noqa: E402

CP = os.path.join(REPO, "datasets", "copy_paste_coco_tiny")
CONFIG = os.path.join(REPO, "projects", "IRNet", "configs", "irnet_R18_scratch_copy_paste.yaml")


def true_boundary(gt, stride, shape):
    """(h, w) bool: the grid cells on a true class boundary (3 × 3 morphological gradient of the true map sampled
    at ``stride``, cropped or zero-padded to ``shape``), and (h, w) bool: the cells the true map labels (not void)."""
    grid = np.full(shape, 255, np.uint8)
    sampled = gt[::stride, ::stride][: shape[0], : shape[1]]
    grid[: sampled.shape[0], : sampled.shape[1]] = sampled
    edge = cv2.morphologyEx(grid, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    return edge, grid != 255


def boundary_contrast(boundary, gt, stride):
    """B on the grid cells that lie on a true class boundary (:func:`true_boundary`) and on the other cells; the
    true map's void cells are left out."""
    edge, valid = true_boundary(gt, stride, boundary.shape)
    return boundary[edge & valid], boundary[~edge & valid]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="a trained IRNet checkpoint")
    p.add_argument("--cues", required=True, help="the cue store of the images (tools/make_cues.py)")
    p.add_argument("--config-file", default=CONFIG)
    p.add_argument("--json", default=os.path.join(CP, "annotations", "instances_train.json"))
    p.add_argument("--images", default=os.path.join(CP, "train"))
    p.add_argument("--semantic", default=os.path.join(CP, "semantic", "train"), help="true semantic PNGs")
    p.add_argument("--num-images", type=int, default=40)
    p.add_argument("--num-classes", type=int, default=5)
    p.add_argument("--steps", type=int, nargs="+", default=[0, 4, 16, 64, 256])
    p.add_argument("--bg", type=float, nargs="+", default=[0.15, 0.25, 0.35, 0.5])
    p.add_argument("--instances", action="store_true", help="also AP^r of the instance pseudo labels per t and of "
                   "the CAM-components baseline (threshold --cam-threshold)")
    p.add_argument("--cam-threshold", type=float, default=0.30, help="the CAM-components baseline's threshold "
                   "(default: %(default)s, bench_irnet's)")
    p.add_argument("--oracle-boundary", action="store_true", help="B = the true class boundaries")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides of the network")
    args = p.parse_args()
    from wsis.methods.irnet.generator import IRNetGenerator  # detectron2
    from wsis.methods.irnet.synthesis import cam_components, synthesize

    torch.set_num_threads(1)
    gen = IRNetGenerator(args.config_file, args.opts, args.weights, cues=args.cues)
    model = gen.model()
    dicts, _ = load_coco_instances(args.json, args.images)  # with the true masks (AP^r); the network reads the image
    dicts = [d for d in sorted(dicts, key=lambda d: d["image_id"]) if d["image_id"] in gen.cues][: args.num_images]
    acc = {(t, bg): PseudoPixelQualityAccumulator(args.num_classes + 1) for t in args.steps for bg in args.bg}
    on_edges, elsewhere = [], []
    found = {t: {} for t in args.steps}
    found["cam"] = {}
    for d in dicts:
        classes, cams = gen.cues[d["image_id"]]
        gt = cv2.imread(os.path.join(args.semantic, f"{d['image_id']}.png"), cv2.IMREAD_UNCHANGED)
        if gt is None:
            sys.exit(f"{args.semantic}: no true map {d['image_id']}.png (image id {d['image_id']})")
        image = gen.image_tensor(d)
        h, w = image.shape[-2:]
        boundary, displacement = model.outputs(image)
        if args.oracle_boundary:
            boundary = torch.from_numpy(true_boundary(gt, model.stride, tuple(boundary.shape))[0]).float()
        e, o = boundary_contrast(boundary.numpy(), gt, model.stride)
        on_edges.append(e)
        elsewhere.append(o)
        cams = torch.from_numpy(cams).float()
        for t in args.steps:
            walked = random_walk(cams, boundary, steps=t)
            up = upsample_cams(walked, h, w, model.stride)
            for bg in args.bg:
                acc[(t, bg)].add(semantic_from_scores(up, classes.tolist(), bg), gt)
            if args.instances:
                out = synthesize(cams, classes.tolist(), boundary, displacement, model.stride, h, w,
                                 dataclasses.replace(gen.settings, walk_steps=t))
                found[t][d["image_id"]] = out["instances"]
        if args.instances:
            found["cam"][d["image_id"]] = cam_components(cams, classes.tolist(), model.stride, h, w,
                                                         args.cam_threshold)
    print(f"{len(dicts)} images; boundary B: mean {np.concatenate(on_edges).mean():.3f} on true class boundaries, "
          f"{np.concatenate(elsewhere).mean():.3f} elsewhere")
    print("| background threshold | " + " | ".join(f"t = {t}" for t in args.steps) + " |")
    print("|---|" + "---|" * len(args.steps))
    for bg in args.bg:
        print(f"| {bg} | " + " | ".join(f"{acc[(t, bg)].summarize()['miou']:.3f}" for t in args.steps) + " |")
    if args.instances:
        from bench_irnet import _ap_r_of_instances

        print("\n| instance pseudo labels | AP^r@0.25 | AP^r@0.5 | AP^r@0.75 |\n|---|---|---|---|")
        for key in args.steps + ["cam"]:
            r = _ap_r_of_instances(found[key], dicts, args.num_classes)
            name = f"IRNet, t = {key}" if key != "cam" else f"CAM components (threshold {args.cam_threshold})"
            print(f"| {name} | " + " | ".join(f"{r[f'AP^r@{v}']:.1f}" for v in ("0.25", "0.5", "0.75")) + " |")


if __name__ == "__main__":
    main()
