#!/usr/bin/env python
"""
CCGR's iterations on the copy-paste set (tools/ccgr_iteration.py's run folder): for each iteration k,

* the MIL boxes: mean IoU of each box with the true box of its class it overlaps most, and per true instance the
  best MIL box of its class (recall-like), on the train split;
* the segmentation branch: mIoU on the val split (its training's evaluation);
* the pseudo instance labels on the train split, AP^r@0.25 / 0.5 against the true masks: MIL boxes ∩ segmentation
  (CCGR with 0 steps, made here into ``pseudo_steps0/``), boxes refined by the paper's plain descent ∩ segmentation
  (``REFINE.BLUR ()``, made here into ``pseudo_plain/``) and the iteration's store (the refinement of its config,
  coarse to fine by default): the paper's Tab. 3 ablation;
* the instance branch (Proxy Mask R-CNN): mask AP and AP^r@0.5 on the val split (its training's evaluation).

    python benchmarks/bench_ccgr_iterations.py --work output/ccgr/run --iterations 1 2 3

Needs detectron2 (for the 0-step labels) and the iterations' outputs.
"""
import argparse
import json
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from wsis.core.boxes import annotation_box, box_iou_matrix  # noqa: E402
from wsis.data.coco_weak import load_coco_instances  # noqa: E402
from wsis.data.predictions import read_predictions  # noqa: E402

CP = os.path.join(REPO, "datasets", "copy_paste_coco_tiny")


def last_metrics(folder):
    """The last line of a detectron2 metrics.json with evaluation results (keys with a '/'), or {}."""
    path = os.path.join(folder, "metrics.json")
    if not os.path.isfile(path):
        return {}
    rows = [json.loads(line) for line in open(path) if line.strip()]
    rows = [r for r in rows if any("/" in k and not k.startswith(("loss", "lr")) for k in r)]
    return rows[-1] if rows else {}


def mil_box_quality(dicts, boxes_file, id_map):
    """(mean IoU of each MIL box with its class's true box it overlaps most, mean best IoU per true instance)."""
    preds = read_predictions(boxes_file, id_map)
    per_box, per_truth = [], []
    for d in dicts:
        gts = [(a["category_id"], annotation_box(a, d["file_name"])) for a in d["annotations"]
               if not a.get("iscrowd", 0)]
        mine = preds.get(d["image_id"], [])
        for r in mine:
            same = [b for c, b in gts if c == r["category_id"]]
            per_box.append(box_iou_matrix([r["box"]], same).max() if same else 0.0)
        for c, b in gts:
            own = [r["box"] for r in mine if r["category_id"] == c]
            per_truth.append(box_iou_matrix([b], own).max() if own else 0.0)
    return float(np.mean(per_box)), float(np.mean(per_truth)), len(per_box)


def variant_labels(it, json_file, images, name, opts):
    """The iteration's pseudo labels again with other refinement settings (``opts``) into ``<it>/<name>``, made
    once: CCGR switched off (MIL boxes ∩ segmentation), or the paper's plain descent."""
    out = os.path.join(it, name)
    if not os.path.isfile(os.path.join(out, "metrics.json")):
        from wsis.cli import make_pseudo_masks

        params = json.load(open(os.path.join(it, "pseudo", "metrics.json")))["params"]
        make_pseudo_masks.main(["--method", "ccgr", "--json", json_file, "--images", images, "--out", out,
                                "--config-file", params["config"], "--workers", "2", "--num-vis", "0", *params["opts"],
                                *opts])
    return json.load(open(os.path.join(out, "metrics.json")))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default=os.path.join(REPO, "output", "ccgr", "run"))
    p.add_argument("--iterations", type=int, nargs="+", default=[1, 2, 3])
    args = p.parse_args()
    json_file = os.path.join(CP, "annotations", "instances_train.json")
    images = os.path.join(CP, "train")
    dicts, meta = load_coco_instances(json_file, images)
    id_map = meta["thing_dataset_id_to_contiguous_id"]
    print("| iteration | MIL boxes: mean IoU (best per true instance) | SS val mIoU (%) | pseudo labels AP^r@0.25 / "
          "0.5 (%): MIL ∩ seg | CCGR plain ∩ seg | CCGR ∩ seg | IS val mask AP (%) | IS val AP^r@0.5 (%) |")
    print("|---|---|---|---|---|---|---|---|")
    for k in args.iterations:
        it = os.path.join(args.work, f"iteration_{k}")
        if not os.path.isfile(os.path.join(it, "pseudo", "metrics.json")):
            print(f"| {k} | (not run: {it} has no pseudo labels) |")
            continue
        iou, best, n = mil_box_quality(dicts, os.path.join(it, "mil_boxes.pth"), id_map)
        ss = last_metrics(os.path.join(it, "ss")).get("sem_seg/mIoU", float("nan"))
        zero = variant_labels(it, json_file, images, "pseudo_steps0", ["MODEL.CCGR.REFINE.STEPS", "0"])
        plain = variant_labels(it, json_file, images, "pseudo_plain", ["MODEL.CCGR.REFINE.BLUR", "()"])
        ccgr = json.load(open(os.path.join(it, "pseudo", "metrics.json")))
        inst = last_metrics(os.path.join(it, "is"))
        apr = next((v for key, v in inst.items() if key.endswith("AP^r@0.5")), float("nan"))
        print(f"| {k} | {iou:.3f} ({best:.3f}), {n} boxes | {ss:.1f} | {zero['AP^r@0.25']:.2f} / "
              f"{zero['AP^r@0.5']:.2f} | {plain['AP^r@0.25']:.2f} / {plain['AP^r@0.5']:.2f} | "
              f"{ccgr['AP^r@0.25']:.2f} / {ccgr['AP^r@0.5']:.2f} | "
              f"{inst.get('segm/AP', float('nan')):.2f} | {apr:.2f} |")


if __name__ == "__main__":
    main()
