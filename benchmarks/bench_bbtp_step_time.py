#!/usr/bin/env python
"""
Training-step time of Mask R-CNN R50-FPN with BBTP's MIL mask head vs Detectron2's standard mask head on the same
batch (needs detectron2). Target: ratio <= 1.10. Steps alternate between the two models so that machine load
affects both alike; the median of --reps steps each is reported.

    WSIS_DATASETS=../shared/data python benchmarks/bench_bbtp_step_time.py --reps 10 [--loss boxinst]
"""
import argparse
import copy
import os
import statistics
import time

import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

import wsis.data.datasets  # noqa: F401
from wsis.config import add_wsis_config
from wsis.data.mapper import WeakDatasetMapper

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cfg_for(head, loss, device):
    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(os.path.join(REPO, "configs", "Base-WSIS-RCNN-FPN.yaml"))
    cfg.MODEL.DEVICE = device
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.ROI_MASK_HEAD.NAME = head
    cfg.MODEL.ROI_MASK_HEAD.BOX_SUPERVISION.LOSS = loss
    cfg.MODEL.ROI_MASK_HEAD.BOX_SUPERVISION.COLOR_WARMUP_ITERS = 0
    cfg.INPUT.MIN_SIZE_TRAIN = (512,)
    cfg.INPUT.MAX_SIZE_TRAIN = 768
    return cfg


def step(model, batch, opt):
    with EventStorage():
        t0 = time.perf_counter()
        losses = model(copy.deepcopy(batch))
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--loss", default="mil", choices=["mil", "boxinst"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--images", type=int, default=2)
    args = p.parse_args()
    torch.manual_seed(0)
    std_cfg = cfg_for("MaskRCNNConvUpsampleHead", args.loss, args.device)
    box_cfg = cfg_for("BoxSupervisedMaskRCNNConvUpsampleHead", args.loss, args.device)
    dicts = [d for d in DatasetCatalog.get("coco_tiny_train") if d["annotations"]][: args.images]
    full = [WeakDatasetMapper(std_cfg, is_train=True)(d) for d in dicts]  # masks for the standard head
    box = copy.deepcopy(full)
    for x in box:  # the same images and boxes, every mask marked box-only
        x["instances"].gt_mask_valid[:] = False
    std, bbtp = build_model(std_cfg), build_model(box_cfg)
    bbtp.load_state_dict(std.state_dict())
    opts = [torch.optim.SGD(m.parameters(), lr=1e-4) for m in (std, bbtp)]
    times = {"standard": [], "bbtp": []}
    for i in range(args.reps + 1):
        t_std = step(std, full, opts[0])
        t_box = step(bbtp, box, opts[1])
        if i:  # the first step warms up allocators
            times["standard"].append(t_std)
            times["bbtp"].append(t_box)
    s, b = statistics.median(times["standard"]), statistics.median(times["bbtp"])
    n = sum(len(x["instances"]) for x in full)
    print(f"R50-FPN, {len(full)} images ({n} instances), 512px, {args.device}, median of {args.reps} steps")
    print(f"  standard mask head      : {s * 1000:8.1f} ms/step")
    print(f"  BoxSupervised ({args.loss:7s}): {b * 1000:8.1f} ms/step   ratio {b / s:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
