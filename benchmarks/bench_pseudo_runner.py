#!/usr/bin/env python
"""
Throughput of the resumable pseudo-mask runner (generation + journal + atomic finalize) with 1 and N workers, on the
real coco_tiny images, measured in one run. The ratio is the figure to watch: the runner should not be the
bottleneck of expensive generators (GrabCut, BoxCaseg inference), which is what the workers are for.

    python benchmarks/bench_pseudo_runner.py [--method boxfill] [--repeat 3] [--workers 2]
"""
import argparse
import os
import sys
import tempfile
import time

from wsis.data.coco_weak import load_coco_instances
from wsis.data.pseudo_store import make_provenance
import wsis.methods.generators  # noqa: F401  (registers the generators)
from wsis.pseudo import build_generator, run_generator

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "coco_tiny")


def bench(dicts, method, workers, repeat):
    best = float("inf")
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            gen = build_generator(method)
            prov = make_provenance(method, gen.params, source="bench", source_hash="0")
            t0 = time.perf_counter()
            run_generator(dicts, gen, os.path.join(tmp, "p.json"), prov, workers=workers, progress=False)
            best = min(best, time.perf_counter() - t0)
    return len(dicts) / best


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--coco-root", default=ROOT)
    p.add_argument("--method", default="boxfill")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    dicts = []
    for split in ("train", "val"):
        ann = os.path.join(args.coco_root, "annotations", f"instances_{split}2017.json")
        if not os.path.isfile(ann):
            sys.exit(f"no data at {ann}")
        dicts += load_coco_instances(ann, os.path.join(args.coco_root, f"{split}2017"), supervision="box")[0]
    one = bench(dicts, args.method, 1, args.repeat)
    many = bench(dicts, args.method, args.workers, args.repeat)
    print(f"{args.method}: {len(dicts)} images, {sum(len(d['annotations']) for d in dicts)} boxes, {os.cpu_count()} CPUs")
    print(f"  1 worker : {one:8.1f} images/s")
    print(f"  {args.workers} workers: {many:8.1f} images/s   speed-up {many / one:.2f}x")


if __name__ == "__main__":
    main()
