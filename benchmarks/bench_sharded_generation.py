#!/usr/bin/env python
"""
Sharded pseudo-mask generation against one multi-worker run, on one machine, measured in the same run: coco_tiny val
with ``wsps`` as (a) 1 shard × 2 workers and (b) 2 shards × 1 worker run at the same time (two processes, as two
tasks of a job array would) + ``--merge``. Checks that the merged store has the bytes of (a), and prints the wall
times and their ratio.

    python benchmarks/bench_sharded_generation.py [--method wsps] [--split val] [--shards 2] [KEY VALUE ...]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(REPO, "tools", "make_pseudo_masks.py")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", default="wsps")
    p.add_argument("--split", default="val")
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("opts", nargs=argparse.REMAINDER)
    args = p.parse_args()
    common = [sys.executable, TOOL, "--method", args.method, "--split", args.split, "--no-progress", "--num-vis", "0"]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([*common, "--workers", str(args.shards), "--out", os.path.join(tmp, "single"), *args.opts],
                       check=True, capture_output=True)
        single = time.perf_counter() - t0
        t0 = time.perf_counter()
        procs = [subprocess.Popen([*common, "--workers", "1", "--num-shards", str(args.shards), "--shard-index",
                                   str(i), "--out", os.path.join(tmp, f"shard{i}"), *args.opts],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(args.shards)]
        if any(proc.wait() for proc in procs):
            sys.exit("a shard failed")
        shards_done = time.perf_counter() - t0
        subprocess.run([sys.executable, TOOL, "--merge",
                        *[os.path.join(tmp, f"shard{i}", "pseudo_masks.json") for i in range(args.shards)],
                        "--out", os.path.join(tmp, "merged.json")], check=True, capture_output=True)
        sharded = time.perf_counter() - t0
        with open(os.path.join(tmp, "single", "pseudo_masks.json"), "rb") as a, \
                open(os.path.join(tmp, "merged.json"), "rb") as b:
            same = a.read() == b.read()
    print(f"{args.method} on coco_tiny {args.split}, {os.cpu_count()} CPUs (wall times include start-up and outputs)")
    print(f"  1 shard x {args.shards} workers              : {single:7.1f} s")
    print(f"  {args.shards} shards x 1 worker (concurrent) + merge: {sharded:7.1f} s "
          f"(shards {shards_done:.1f} s, merge {sharded - shards_done:.1f} s)")
    print(f"  ratio sharded / single: {sharded / single:.2f};  merged store byte-identical to the single run: {same}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
