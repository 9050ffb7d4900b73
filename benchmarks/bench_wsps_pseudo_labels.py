#!/usr/bin/env python
"""
Quality and throughput of the WSPS box pseudo labels (projects/WSPS/README.md), all numbers from one run.

Quality, per dataset, of the labelings computed from the same GrabCut and proposal runs of every box:
box-fill; plain GrabCut (OpenCV's rectangle initialisation, 5 iterations, on the same resampled window); the
core-seeded GrabCut wsps uses; the tightest of the vote's GrabCut runs; the best-IoU proposal alone; the fusion (WSPS
iteration 0, with ignore); fusion + DenseCRF (``refine="crf"``); the vote without its tight-GrabCut rule; the vote
(``refine="vote"``, the "wsps" generator's default output). Datasets: coco_tiny val and train (non-crowd
instances) and ECSSD (one box per image: the tight box of its salient mask). Throughput:
``tools/make_pseudo_masks.py``'s runner with the default "wsps" generator on coco_tiny val, with 1 and N workers.

    python benchmarks/bench_wsps_pseudo_labels.py [--datasets coco_tiny_val,coco_tiny_train,ecssd] [--limit N]
        [--jobs 2] [--workers 2] [--json output/bench_wsps.json]

"mean IoU" and the pixel figures are :func:`wsis.evaluation.pseudo_eval.evaluate_pseudo_masks` (ignored pixels are
left out of an instance's IoU); "strict mean IoU" counts ignored pixels as not the object's. Every instance is scored:
an empty mask (which the generators store as invalid) counts with IoU 0, and "empty masks" counts them.
"""
import argparse
import json
import multiprocessing as mp
import os
import tempfile
import time

import numpy as np

from wsis.data.coco_weak import load_coco_instances
from wsis.data.converters import load_salient_folder
from wsis.data.pseudo_store import make_provenance
from wsis.data.weak import to_box_supervision
from wsis.evaluation.pseudo_eval import evaluate_pseudo_masks, mark_all_valid, without_ignore
from wsis.pseudo import run_generator
from wsis.core.boxes import annotation_extent
from wsis.methods.wsps.fusion import box_states, fuse
from wsis.methods.wsps.generator import WSPSGenerator
from wsis.pseudo.records import image_record, read_image
from wsis.methods.wsps.grabcut import grabcut_box
from wsis.methods.wsps.vote import vote_fuse

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")
ROWS = ["box-fill", "GrabCut (plain, rect init)", "GrabCut (core-seeded)", "GrabCut (tightest of 3 runs)",
        "proposal (best IoU)", "fusion (WSPS iter. 0)", "fusion + DenseCRF", "vote, no tight rule",
        "vote (default)"]


def load(name, limit):
    if name in ("coco_tiny_val", "coco_tiny_train"):
        root, split = os.path.join(DATA, "coco_tiny"), name.rsplit("_", 1)[1]
        gt, _ = load_coco_instances(os.path.join(root, "annotations", f"instances_{split}2017.json"),
                                    os.path.join(root, f"{split}2017"))
    elif name == "ecssd":
        gt = load_salient_folder(os.path.join(DATA, "ecssd", "images"), os.path.join(DATA, "ecssd", "masks"))
    else:
        raise SystemExit(f"unknown dataset {name}")
    return gt[:limit] if limit else gt


def _estimate_masks(d, anns, boxes, estimates):
    h, w = d["height"], d["width"]
    masks = np.zeros((len(anns), h, w), dtype=bool)
    for i, ((x0, y0, x1, y1), e) in enumerate(zip(boxes, estimates)):
        masks[i, y0:y1, x0:x1] = e
    return image_record(d, anns, masks, np.zeros_like(masks), np.zeros((h, w), dtype=bool))


def all_rows(d, gen=WSPSGenerator()):
    """The six records of one image (a dataset dict with boxes only)."""
    image = read_image(d)
    h, w = image.shape[:2]
    anns = [a for a in d["annotations"] if not a.get("iscrowd", 0)]
    crowd = [annotation_extent(a, h, w) for a in d["annotations"] if a.get("iscrowd", 0)]
    boxes = [annotation_extent(a, h, w) for a in anns]
    classes = [a["category_id"] for a in anns]
    fill = [np.ones((y1 - y0, x1 - x0), dtype=bool) for x0, y0, x1, y1 in boxes]
    plain_params = dict(gen.params["grabcut"], init="rect")
    empty = [np.zeros((y1 - y0, x1 - x0), dtype=bool) for x0, y0, x1, y1 in boxes]  # a failed GrabCut: no pixel
    plain = [grabcut_box(image, b, seed=gen.params["seed"], **plain_params) for b in boxes]
    plain = [g if g is not None else e for g, e in zip(plain, empty)]
    core = [gen.grabcut(image, b) for b in boxes]
    tight = [gen.tight_grabcut(image, b, g) if g is not None else e for b, g, e in zip(boxes, core, empty)]
    core = [g if g is not None else e for g, e in zip(core, empty)]
    prop = [gen.proposal(image, b) for b in boxes]
    states = [box_states(g, p) for g, p in zip(core, prop)]
    fused = fuse((h, w), boxes, classes, states, gen.params["cross_class"], crowd)
    refined = fuse((h, w), boxes, classes, gen.refine_states(image, boxes, states), gen.params["cross_class"], crowd)
    v = gen.params["vote"]
    untight = vote_fuse((h, w), boxes, classes, list(zip(core, prop)), crowd, v["ellipse"], tight=2.0)
    voted = vote_fuse((h, w), boxes, classes, list(zip(tight, prop)), crowd, v["ellipse"], v["tight"])
    return d["image_id"], [
        _estimate_masks(d, anns, boxes, fill), _estimate_masks(d, anns, boxes, plain),
        _estimate_masks(d, anns, boxes, core), _estimate_masks(d, anns, boxes, tight),
        _estimate_masks(d, anns, boxes, prop)] + [
        image_record(d, anns, f.masks, f.instance_ignore, f.image_ignore) for f in (fused, refined, untight, voted)]


def quality(name, limit, jobs):
    gt = load(name, limit)
    boxes = to_box_supervision(gt)
    t0 = time.perf_counter()
    with mp.Pool(jobs) as pool:
        results = dict(pool.imap_unordered(all_rows, boxes, chunksize=2))
    seconds = time.perf_counter() - t0
    table = {}
    for k, row in enumerate(ROWS):
        records = {i: results[i][k] for i in sorted(results)}
        empty = sum(not i["valid"] for r in records.values() for i in r["instances"])
        records = mark_all_valid(records)
        m = evaluate_pseudo_masks(records, gt)
        m["num_empty_masks"] = empty
        s = evaluate_pseudo_masks(without_ignore(records), gt)
        m.update({f"strict_{k}": v for k, v in s.items() if k.endswith("mean_iou")})
        table[row] = m
    return {"images": len(gt), "instances": table[ROWS[0]]["num_instances"], "seconds_all_rows": seconds,
            "rows": table}


def _images_per_s(dicts, gen, workers):
    with tempfile.TemporaryDirectory() as tmp:
        prov = make_provenance("wsps", gen.params, source="bench", source_hash="0")
        t0 = time.perf_counter()
        skipped = run_generator(dicts, gen, os.path.join(tmp, "p.json"), prov, workers=workers, progress=False)
        assert not skipped, skipped
        return len(dicts) / (time.perf_counter() - t0)


def throughput(limit, workers):
    """The default generator with 1 and ``workers`` workers, and "fusion + DenseCRF" with 1 (the baseline)."""
    dicts = to_box_supervision(load("coco_tiny_val", limit))
    load_before = os.getloadavg()[0]
    out = {n: _images_per_s(dicts, WSPSGenerator(), n) for n in (1, workers)}
    crf = _images_per_s(dicts, WSPSGenerator(refine="crf"), 1)
    return {"images": len(dicts), "images_per_s": out, "speedup": out[workers] / out[1], "cpus": os.cpu_count(),
            "crf_images_per_s_1_worker": crf, "load_average_before": load_before}


def markdown(results):
    lines = []
    for name, res in results.items():
        if name == "throughput":
            continue
        lines += [f"\n{name}: {res['images']} images, {res['instances']} instances", "",
                  "| labels | mean IoU | strict mean IoU | class-mean IoU | IoU@0.5 | IoU@0.75 | pixel precision | "
                  "pixel recall | fraction ignored | small / medium / large | strict small / medium / large | "
                  "empty masks |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row, m in res["rows"].items():
            size = lambda key, k: f"{m[key]:.3f}" if m[f"{k}/num_instances"] else "–"  # noqa: E731
            sizes = " / ".join(size(f"{k}/mean_iou", k) for k in ("small", "medium", "large"))
            strict_sizes = " / ".join(size(f"strict_{k}/mean_iou", k) for k in ("small", "medium", "large"))
            lines.append(f"| {row} | {m['mean_iou']:.3f} | {m['strict_mean_iou']:.3f} | {m['class_mean_iou']:.3f} | "
                         f"{m['iou@0.5']:.3f} | {m['iou@0.75']:.3f} | {m['pixel_precision']:.3f} | "
                         f"{m['pixel_recall']:.3f} | {m['pixel_fraction_ignored']:.3f} | {sizes} | {strict_sizes} | "
                         f"{m['num_empty_masks']} |")
    if "throughput" in results:
        t = results["throughput"]
        (one, many), n = t["images_per_s"].values(), list(t["images_per_s"])[-1]
        lines += ["", f"throughput (wsps, coco_tiny val, {t['images']} images, {t['cpus']} CPUs): 1 worker "
                  f"{one:.3f} images/s, {n} workers {many:.3f} images/s, speed-up {t['speedup']:.2f}x; fusion + DenseCRF "
                  f"(refine crf), 1 worker: {t['crf_images_per_s_1_worker']:.3f} images/s, the default is "
                  f"{one / t['crf_images_per_s_1_worker']:.2f}x as fast (1-min load average before: "
                  f"{t['load_average_before']:.2f})"]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="coco_tiny_val,coco_tiny_train,ecssd")
    p.add_argument("--limit", type=int, default=0, help="first N images of each dataset (0: all)")
    p.add_argument("--jobs", type=int, default=os.cpu_count(), help="processes for the quality pass")
    p.add_argument("--workers", type=int, default=2, help="workers of the throughput comparison (0: skip it)")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    results = {}
    for name in args.datasets.split(","):
        if name:
            results[name] = quality(name, args.limit, args.jobs)
            print(markdown({name: results[name]}), flush=True)
    if args.workers:
        results["throughput"] = throughput(args.limit, args.workers)
        print(markdown({"throughput": results["throughput"]}), flush=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
