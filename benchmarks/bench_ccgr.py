#!/usr/bin/env python
"""
CCGR's box refinement alone (wsis.methods.ccgr.refine, Eq. 2-3) on the copy-paste train split: every instance's
true box jittered by up to ±30 % of its size per side (seeded), refined on its class's segmentation score map, and
the mean IoU with the true box per number of steps (0, 40, 80, 200; the paper's Fig. 4-5 go to 200). Score maps:

* "DSRG head": the softmax of the DSRG head that benchmarks/bench_dsrg.py trains on the copy-paste set's CAM seeds
  (val mIoU 29.1; DSRG's head as CCGR's segmentation branch, which the issue allows); needs detectron2;
* "true maps": the true semantic map of the class, blurred (σ 2 px): the refinement with a perfect branch.

Each row twice: the default coarse-to-fine descent (``MODEL.CCGR.REFINE.BLUR``) and the paper's plain descent
(``BLUR ()``). Then the same from the MIL boxes (one per bag, WSDDNBagROIHeads of projects/CCGR/configs/mil_R18_scratch_copy_paste.yaml
on tools/make_ccgr_bags.py's bags), when that model exists, over every bag and over the bags whose MIL box
overlaps a true box of its class. Also the throughput of the refinement, every box in one
batch against one box at a time (200 steps).

    python benchmarks/bench_ccgr.py [--weights output/bench_dsrg/copy_paste/head_growing/model_final.pth]
    python benchmarks/bench_ccgr.py --iteration output/ccgr/run/iteration_1   # an iteration's MIL and SS branches

(``--weights``: any semantic segmentor's checkpoint with its config.yaml beside it; ``--iteration``: the MIL boxes of
that iteration's MIL branch on its bags, refined on its segmentation branch's maps.)
"""
import argparse
import os
import sys
import time

import cv2
import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from wsis.core.boxes import annotation_box  # noqa: E402
from wsis.data.coco_weak import load_coco_instances  # noqa: E402
from wsis.methods.ccgr.refine import CCGRParams, refine_boxes  # noqa: E402

CP = os.path.join(REPO, "datasets", "copy_paste_coco_tiny")
STEPS = (0, 40, 80, 200)
#: the refinement variants of every row: the default, and the paper's plain descent on the map
VARIANTS = (("coarse to fine", {}), ("plain", {"blur": ()}))


def box_iou(a, b):
    lt, rb = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp_min(0).prod(1)
    area = lambda x: (x[:, 2:] - x[:, :2]).clamp_min(0).prod(1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def instances(dicts, seed=0):
    """(image index, class, true box, jittered box) of every non-crowd instance."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, d in enumerate(dicts):
        for a in d["annotations"]:
            if a.get("iscrowd", 0):
                continue
            box = np.asarray(annotation_box(a, d["file_name"]), np.float64)
            size = np.tile(box[2:] - box[:2], 2)
            jitter = box + rng.uniform(-0.3, 0.3, 4) * size
            jitter = np.clip(jitter, 0, [d["width"], d["height"]] * 2)
            if jitter[2] - jitter[0] < 2 or jitter[3] - jitter[1] < 2:
                jitter = box
            rows.append((k, a["category_id"], box, jitter))
    return rows


def parts(rows, seed=1):
    """The same instances, each true box shrunk to a part of it, as WSDDN picks: sides 30-50 % of the box's, the
    centre moved by up to ±25 % of its size (seeded); on a part the context ring often lies inside the object."""
    rng = np.random.default_rng(seed)
    out = []
    for k, c, box, _ in rows:
        size = box[2:] - box[:2]
        half = size * rng.uniform(0.3, 0.5, 2) / 2
        centre = box[:2] + size / 2 + rng.uniform(-0.25, 0.25, 2) * size
        out.append((k, c, box, np.concatenate([centre - half, centre + half])))
    return out


def true_maps(dicts, rows):
    out = []
    for k, c, _, _ in rows:
        d = dicts[k]
        sem = cv2.imread(os.path.join(CP, "semantic", "train", f"{d['image_id']}.png"), cv2.IMREAD_UNCHANGED)
        out.append(cv2.GaussianBlur((sem == c + 1).astype(np.float32), (0, 0), 2.0))
    return torch.from_numpy(np.stack(out))


def dsrg_probs(dicts, indices, weights):
    """image index → (K + 1, H, W) softmax of the DSRG head (background first)."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    import wsis.modeling  # noqa: F401
    from wsis.config import add_wsis_config
    from wsis.pseudo.network import semantic_probs

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(os.path.join(os.path.dirname(weights), "config.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(weights)
    probs = {}
    for k in sorted(set(indices)):
        image = cv2.imread(dicts[k]["file_name"], cv2.IMREAD_COLOR)
        probs[k] = semantic_probs(model, cfg, image if cfg.INPUT.FORMAT == "BGR" else image[:, :, ::-1])
    return probs


def dsrg_maps(probs, rows):
    return torch.from_numpy(np.stack([probs[k][c + 1] for k, c, _, _ in rows]).astype(np.float32))


def pseudo_label_apr(dicts, rows, scores, boxes, probs):
    """AP^r@0.25 / 0.5 of the boxes ∩ the DSRG head's arg max class (wsis.methods.ccgr.instances.box_masks)
    against the true masks of the images."""
    from wsis.evaluation.ap_r import InstanceAPAccumulator
    from wsis.methods.ccgr.instances import box_masks

    acc = InstanceAPAccumulator(5, iou_thresholds=(0.25, 0.5))
    for k in sorted({r[0] for r in rows}):
        mine = [i for i, r in enumerate(rows) if r[0] == k]
        labels = probs[k].argmax(0)
        masks = box_masks(labels, boxes[mine].numpy(), [rows[i][1] + 1 for i in mine])
        preds = [{"category_id": rows[i][1], "score": float(scores[i]), "segmentation": m}
                 for i, m in zip(mine, masks)]
        d = dicts[k]
        gts = [{"category_id": a["category_id"], "segmentation": a["segmentation"], "iscrowd": a.get("iscrowd", 0)}
               for a in d["annotations"]]
        acc.add(preds, gts, image_size=(d["height"], d["width"]))
    res = acc.summarize()
    return res["AP^r@0.25"], res["AP^r@0.5"]


def mil_rows(dicts, config, weights, bag_file):
    """(image index, class, best true box of its class, MIL box) of every bag: the MIL branch's box of each bag
    (WSDDNBagROIHeads at test) and the true box of the same class it overlaps most (zeros when the class has none
    in the image); per true instance, the best IoU of a MIL box of its class; and each bag's score."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    import wsis.modeling  # noqa: F401
    from wsis.config import add_wsis_config
    from wsis.methods.ccgr.bag_file import attach_bags, read_bag_file
    from wsis.methods.ccgr.mapper import CCGRBagMapper

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(config)
    cfg.MODEL.WEIGHTS = weights
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(weights)
    mapper = CCGRBagMapper(cfg, is_train=False)
    rows, recall, scores = [], [], []
    for k, d in enumerate(attach_bags(dicts, read_bag_file(bag_file))):
        if "bags" not in d:
            continue
        with torch.no_grad():
            inst = model([mapper(d)])[0]["instances"].to("cpu")
        gts = [(a["category_id"], np.asarray(annotation_box(a, d["file_name"]), np.float64))
               for a in d["annotations"] if not a.get("iscrowd", 0)]
        mine = inst.pred_boxes.tensor
        scores += inst.scores.tolist()
        for box, c in zip(mine, inst.pred_classes.tolist()):
            same = [g for cc, g in gts if cc == c]
            if same:
                ious = box_iou(box[None].expand(len(same), 4), torch.tensor(np.stack(same), dtype=torch.float32))
                rows.append((k, c, same[int(ious.argmax())], box.numpy().astype(np.float64)))
            else:
                rows.append((k, c, np.zeros(4), box.numpy().astype(np.float64)))
        for c, g in gts:
            own = mine[inst.pred_classes == c]
            recall.append(float(box_iou(own, torch.tensor(g, dtype=torch.float32)[None].expand(len(own), 4)).max())
                          if len(own) else 0.0)
    return rows, float(np.mean(recall)), scores


def header():
    print("| score maps, descent | " + " | ".join(f"{s} steps: mean IoU (IoU ≥ 0.7)" for s in STEPS) + " |")
    print("|---|" + "---|" * len(STEPS))


def evaluate(name, maps, rows, params):
    """A table row per refinement variant: mean IoU with the true box (fraction ≥ 0.7) after each number of steps."""
    truth = torch.tensor(np.stack([r[2] for r in rows]), dtype=torch.float32)
    start = torch.tensor(np.stack([r[3] for r in rows]), dtype=torch.float32)
    for variant, extra in VARIANTS:
        cells = []
        for steps in STEPS:
            out = refine_boxes(maps, start, CCGRParams(**dict(params, steps=steps, **extra)))
            iou = box_iou(out, truth)
            cells.append(f"{iou.mean():.3f} ({(iou >= 0.7).float().mean():.2f})")
        print(f"| {name}, {variant} | " + " | ".join(cells) + " |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=os.path.join(REPO, "output", "bench_dsrg", "copy_paste", "head_growing",
                                                     "model_final.pth"))
    p.add_argument("--iteration", default=None, help="a tools/ccgr_iteration.py iteration folder: its ss/ maps, "
                   "mil/ model and bags.pkl instead of the defaults")
    p.add_argument("--step-size", type=float, default=CCGRParams().step_size)
    p.add_argument("--images", type=int, default=400, help="the first N train images (default: %(default)s)")
    p.add_argument("--skip", type=int, default=0, help="start after the first K images (by id), e.g. to check a "
                   "setting on images other than those it was chosen on (default: %(default)s)")
    args = p.parse_args()
    mil = os.path.join(REPO, "output", "ccgr", "mil_R18_scratch_copy_paste", "model_final.pth")
    config = os.path.join(REPO, "projects", "CCGR", "configs", "mil_R18_scratch_copy_paste.yaml")
    bag_file = os.path.join(REPO, "output", "ccgr", "bags_copy_paste_train.pkl")
    if args.iteration:
        args.weights = os.path.join(args.iteration, "ss", "model_final.pth")
        mil = os.path.join(args.iteration, "mil", "model_final.pth")
        config = os.path.join(args.iteration, "mil", "config.yaml")
        bag_file = os.path.join(args.iteration, "bags.pkl")
    torch.set_num_threads(1)
    dicts, _ = load_coco_instances(os.path.join(CP, "annotations", "instances_train.json"), os.path.join(CP, "train"))
    dicts = sorted(dicts, key=lambda d: d["image_id"])[args.skip: args.skip + args.images]
    rows = instances(dicts)
    params = {"step_size": args.step_size}
    print(f"{len(rows)} instances of {len(dicts)} images (after the first {args.skip}); step size "
          f"{args.step_size}; boxes jittered ±30 %")
    header()
    maps = true_maps(dicts, rows)
    evaluate("true maps, blurred σ 2", maps, rows, params)
    name = "segmentation branch (PSP, this iteration)" if args.iteration else "DSRG head (copy-paste, CAM seeds)"
    have_dsrg = os.path.isfile(args.weights)
    if have_dsrg:
        probs = dsrg_probs(dicts, [r[0] for r in rows], args.weights)
        branch_maps = dsrg_maps(probs, rows)  # the same instances' maps serve the parts below
        evaluate(name, branch_maps, rows, params)
    print("\nfrom parts of the true boxes (sides 30-50 %, centre within ±25 %):")
    header()
    part_rows = parts(rows)
    evaluate("true maps, blurred σ 2", maps, part_rows, params)
    if have_dsrg:
        evaluate(name, branch_maps, part_rows, params)
    else:
        print(f"(no DSRG head at {args.weights}: run benchmarks/bench_dsrg.py first)")
    if os.path.isfile(mil) and have_dsrg:
        mil_boxes, recall, scores = mil_rows(dicts, config, mil, bag_file)
        print(f"\nfrom the MIL boxes ({len(mil_boxes)} bags; each against the true box of its class it overlaps "
              f"most; per true instance, the best MIL box of its class has mean IoU {recall:.3f}):")
        header()
        mil_true = true_maps(dicts, mil_boxes)  # read once: the overlapping boxes below index it
        evaluate("true maps, blurred σ 2", mil_true, mil_boxes, params)
        probs.update(dsrg_probs(dicts, [r[0] for r in mil_boxes if r[0] not in probs], args.weights))
        maps = dsrg_maps(probs, mil_boxes)
        evaluate(name, maps, mil_boxes, params)
        start = torch.tensor(np.stack([r[3] for r in mil_boxes]), dtype=torch.float32)
        touching = box_iou(start, torch.tensor(np.stack([r[2] for r in mil_boxes]), dtype=torch.float32)) > 0
        on = [r for r, t in zip(mil_boxes, touching.tolist()) if t]
        if on:
            print(f"\nthe same, only the {len(on)} MIL boxes that overlap a true box of their class (the others lie "
                  "on background, where Eq. 3 has nothing to find):")
            header()
            evaluate("true maps, blurred σ 2", mil_true[touching], on, params)
            evaluate(name, maps[touching], on, params)
        before = pseudo_label_apr(dicts, mil_boxes, scores, start, probs)
        cells = [f"MIL boxes {before[0]:.1f} / {before[1]:.1f}"]
        for variant, extra in VARIANTS:
            refined = refine_boxes(maps, start, CCGRParams(step_size=args.step_size, **extra))
            after = pseudo_label_apr(dicts, mil_boxes, scores, refined, probs)
            cells.append(f"CCGR-refined ({variant}, 200 steps) {after[0]:.1f} / {after[1]:.1f}")
        print(f"pseudo instance labels (box ∩ the {name}'s class), AP^r@0.25 / 0.5: " + ", ".join(cells))
    else:
        print(f"(no MIL model at {mil}: train projects/CCGR/configs/mil_R18_scratch_copy_paste.yaml first)")
    start = torch.tensor(np.stack([r[3] for r in rows]), dtype=torch.float32)
    n = min(200, len(rows))
    for variant, extra in VARIANTS:
        params = CCGRParams(step_size=args.step_size, **extra)
        t = time.perf_counter()
        refine_boxes(maps[:n], start[:n], params)
        batched = n / (time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(n):
            refine_boxes(maps[i:i + 1], start[i:i + 1], params)
        single = n / (time.perf_counter() - t)
        print(f"throughput ({variant}), 200 steps, 1 thread: {batched:.1f} boxes/s batched ({n} boxes), "
              f"{single:.1f} one at a time ({batched / single:.1f}x)")


if __name__ == "__main__":
    main()
