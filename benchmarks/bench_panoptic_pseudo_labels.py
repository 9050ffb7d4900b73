#!/usr/bin/env python
"""
WSPS's iteration-0 panoptic pseudo labels (things from boxes, stuff from tags; wsis.methods.panoptic.pseudo_labels)
against coco_panoptic_val100's true panoptic labels, by PQ / SQ / RQ for things and stuff (wsis's PQAccumulator).

    python tools/convert_coco_panoptic.py                       # datasets/coco_panoptic_val100_halves
    python tools/make_cues.py --method gradcam --config-file projects/CAM/configs/cam_R18_scratch_coco_panoptic_halves.yaml \\
        --json datasets/coco_panoptic_val100_halves/annotations/instances_train.json \\
        --images datasets/coco_panoptic_val100_halves/train --out output/bench_panoptic/cues_train_gradcam \\
        MODEL.WEIGHTS <the CAM classifier trained on the train half>          # and the same for val
    python benchmarks/bench_panoptic_pseudo_labels.py [--cues output/bench_panoptic/cues_{split}_gradcam]

Rows, per half: the baseline (boxes filled, the smallest box on top, and every other pixel the stuff class tagged
in most training images); things from the "wsps" generator's vote (default) or WSPS's fusion (``REFINE none``),
each with stuff from the Grad-CAM cues of the image's stuff tags (50 % of each map's max, smaller area first,
uncovered pixels void). The CAM classifier learned from the train half's tags only; on the val half the cues come
from a model that never saw those images.
"""
import argparse
import json
import multiprocessing as mp
import os
import sys
from collections import Counter

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from wsis.core.merge import paint_smallest_last  # noqa: E402
from wsis.data.coco_weak import load_coco_instances  # noqa: E402
from wsis.data.cue_store import CueStore  # noqa: E402
from wsis.evaluation.panoptic_quality import PQAccumulator  # noqa: E402
from wsis.core.boxes import annotation_extent  # noqa: E402
from wsis.methods.panoptic.pseudo_labels import (assemble_panoptic, panoptic_categories,  # noqa: E402
                                                 panoptic_ground_truth, panoptic_pseudo_label)
from wsis.methods.wsps.generator import WSPSGenerator  # noqa: E402

HALVES = os.path.join(REPO, "datasets", "coco_panoptic_val100_halves")
KEYS = ("PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st")


def load_half(split):
    json_file = os.path.join(HALVES, "annotations", f"instances_{split}.json")
    gt, meta = load_coco_instances(json_file, os.path.join(HALVES, split))
    return gt, panoptic_categories(json_file, meta)[1]


def one(args):
    d, refine, store, isthing, fallback = args
    h, w = d["height"], d["width"]
    if refine != "boxfill":
        cues = store[d["image_id"]] if d["image_id"] in store else None
        ids, segs = panoptic_pseudo_label(d, WSPSGenerator(refine=refine), cues, isthing)
        return d["image_id"], ids, segs
    anns = [a for a in d["annotations"] if isthing[a["category_id"]] and not a.get("iscrowd", 0)]
    boxes = [annotation_extent(a, h, w) for a in anns]
    fills = np.zeros((len(boxes), h, w), bool)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        fills[i, y0:y1, x0:x1] = True
    masks = paint_smallest_last(fills, [(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes])
    stuff = np.full((h, w), fallback + 1, np.uint8)
    ids, segs = assemble_panoptic(masks, [a["category_id"] for a in anns], None, stuff)
    return d["image_id"], ids, segs


def evaluate(split, refine, cue_dir, jobs, fallback):
    gt, isthing = load_half(split)
    pq = PQAccumulator({c: int(t) for c, t in isthing.items()})
    store = CueStore(cue_dir)
    with mp.Pool(jobs) as pool:
        results = {i: (ids, segs) for i, ids, segs in
                   pool.imap_unordered(one, [(d, refine, store, isthing, fallback) for d in gt])}
    void = 0
    for d in gt:
        ids, segs = results[d["image_id"]]
        gids, gsegs = panoptic_ground_truth(d)
        pq.add(ids, segs, gids, gsegs)
        void += float((ids == 0).mean())
    out = pq.summarize()
    out["void_fraction"] = void / len(gt)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cues", default=os.path.join(REPO, "output", "bench_panoptic", "cues_{split}_gradcam"))
    p.add_argument("--jobs", type=int, default=os.cpu_count())
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    train, isthing = load_half("train")
    tagged = Counter(c for d in train for c in set(d["image_labels"]) if not isthing[c])
    fallback = tagged.most_common(1)[0][0]
    results = {}
    for split in ("train", "val"):
        for refine in ("boxfill", "vote", "none"):
            r = evaluate(split, refine, args.cues.format(split=split), args.jobs, fallback)
            results[f"{split}/{refine}"] = r
            print(f"{split} {refine:8s} " + " ".join(f"{k} {r[k]:.1f}" for k in KEYS)
                  + f" void {r['void_fraction']:.3f}", flush=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"fallback_stuff_class": fallback, "results": results}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
