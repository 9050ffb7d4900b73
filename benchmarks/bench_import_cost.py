#!/usr/bin/env python
"""
Import cost of wsis, before and after a change: modules loaded and wall time of ``import wsis``, ``import
wsis.modeling`` (every registered part) and one pure helper, each in fresh processes (median of --repeats).

    python benchmarks/bench_import_cost.py                                   # this checkout
    python benchmarks/bench_import_cost.py --checkout /tmp/old --helper wsis.data.boxcaseg_crops   # another one

Prints one table row per import: wsis modules, all modules, median seconds (the ratio column compares with the first
checkout given when several are, measured in the same run).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODE = """
import sys, time
before = set(sys.modules)
t = time.perf_counter()
import {module}
dt = time.perf_counter() - t
new = set(sys.modules) - before
print(__import__("json").dumps([dt, sum(m.split(".")[0] == "wsis" for m in new), len(new)]))
"""


def measure(checkout, module, repeats):
    env = dict(os.environ, PYTHONPATH=checkout)
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", CODE.format(module=module)], env=env, capture_output=True,
                             text=True, cwd="/")
        if out.returncode:
            raise SystemExit(f"{checkout}: import {module} failed:\n{out.stderr}")
        runs.append(json.loads(out.stdout))
    return statistics.median(r[0] for r in runs), runs[0][1], runs[0][2]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkout", action="append", default=[],
                   help="repository root to measure (repeatable; default: this one)")
    p.add_argument("--helper", action="append", default=[],
                   help="the pure helper module of each checkout, in the same order (default: "
                        "wsis.methods.boxcaseg.crops)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    checkouts = args.checkout or [HERE]
    helpers = args.helper + ["wsis.methods.boxcaseg.crops"] * (len(checkouts) - len(args.helper))
    print(f"python {sys.version.split()[0]}, {args.repeats} fresh processes each (median)")
    print("| checkout | import | wsis modules | all modules | seconds |")
    print("|---|---|---|---|---|")
    for checkout, helper in zip(checkouts, helpers):
        for module in ("wsis", "wsis.modeling", helper):
            dt, n_wsis, n_all = measure(checkout, module, args.repeats)
            print(f"| {checkout} | `import {module}` | {n_wsis} | {n_all} | {dt:.3f} |")


if __name__ == "__main__":
    main()
