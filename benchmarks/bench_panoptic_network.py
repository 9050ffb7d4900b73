#!/usr/bin/env python
"""
WSPS's panoptic network (``WSPSPanopticNetwork``) trained on the first half of coco_panoptic_val100 with weak,
semi-supervised (50 %) and full panoptic labels, same schedule, evaluated on the other half: PQ / SQ / RQ (things,
stuff), AP^r of the segments and mIoU of Q, and the weak / full ratio. Needs detectron2 (run it with the Python of
a detectron2 environment) and the Grad-CAM cues of the train half (benchmarks/bench_panoptic_pseudo_labels.py says
how to make them).

    python benchmarks/bench_panoptic_network.py [--out output/panoptic_runs] [--round]

Per setting: the label folder (tools/make_panoptic_labels.py: weak = boxes + Grad-CAM stuff; semi50 = the true
labels of a seeded half of the images, weak on the rest; full = the true labels), then stage 1 (semantic head +
detector, panoptic_R18_FPN_scratch_coco_panoptic_halves.yaml) and stage 2 (+ the instance CRF end to end, its
_crf.yaml), each evaluated on the val half at its end; the stage-2 model also on its own training images against
their true labels ("fit"). ``--round`` then makes the weak model's next-round labels
(tools/wsps_panoptic_round.py) and reports their PQ against the train half's truth. Finished steps are kept: a
rerun only does what is missing.
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HALVES = os.path.join("datasets", "coco_panoptic_val100_halves")
CONFIG = os.path.join("projects", "WSPS", "configs", "panoptic_R18_FPN_scratch_coco_panoptic_halves")
SETTINGS = {"weak": ["--cues", "{cues}"], "semi50": ["--cues", "{cues}", "--full-fraction", "0.5", "--seed", "0"],
            "full": ["--no-cues", "--full-fraction", "1.0"]}
COLUMNS = ("PQ", "SQ", "RQ", "PQ_th", "PQ_st", "AP^r@0.5", "AP^r_vol", "mIoU")


def run(cmd, log):
    t = time.time()
    with open(log, "w") as f:
        rc = subprocess.call(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
    if rc:
        sys.exit(f"{' '.join(cmd)} failed (rc {rc}); see {log}")
    return time.time() - t


def labels(setting, out, cues):
    folder = os.path.join("output", "panoptic", f"train_{setting}")
    if not os.path.isfile(os.path.join(REPO, folder, "metrics.json")):
        args = [a.format(cues=cues) for a in SETTINGS[setting]]
        run([sys.executable, "tools/make_panoptic_labels.py", "--json", f"{HALVES}/annotations/instances_train.json",
             "--images", f"{HALVES}/train", "--out", folder, "--no-progress", *args],
            os.path.join(out, f"labels_{setting}.log"))
    with open(os.path.join(REPO, folder, "metrics.json")) as f:
        return folder, json.load(f)


def stage(setting, k, folder, out, timings):
    stage_dir = os.path.join(out, setting, f"stage{k}")
    results = os.path.join(REPO, stage_dir, "inference")
    if not os.path.isfile(os.path.join(results, "panoptic_segments.json")):
        cmd = [sys.executable, "tools/train_net.py", "--config-file", CONFIG + ("_crf.yaml" if k == 2 else ".yaml"),
               "WSIS.DATA.PANOPTIC_LABELS", f"('{folder}',)", "OUTPUT_DIR", stage_dir]
        if k == 2:
            cmd += ["MODEL.WEIGHTS", os.path.join(out, setting, "stage1", "model_final.pth")]
        timings[f"{setting}/stage{k}"] = run(cmd, os.path.join(REPO, out, f"{setting}.stage{k}.log"))
    return _results(results)


def train_fit(setting, out, timings):
    """The stage-2 model on its own training images, against their true labels: how well it fits."""
    stage_dir = os.path.join(out, setting, "stage2")
    results = os.path.join(REPO, stage_dir, "train_half")
    if not os.path.isfile(os.path.join(results, "panoptic_segments.json")):
        run([sys.executable, "tools/train_net.py", "--config-file", CONFIG + "_crf.yaml", "--eval-only",
             "MODEL.WEIGHTS", os.path.join(stage_dir, "model_final.pth"), "DATASETS.TEST",
             "('coco_panoptic_halves_train_panoptic',)", "OUTPUT_DIR", os.path.join(stage_dir, "train_half_run")],
            os.path.join(REPO, out, f"{setting}.train_half.log"))
        os.replace(os.path.join(REPO, stage_dir, "train_half_run", "inference"), results)
    return _results(results)


def _results(folder):
    row = {}
    for name in ("panoptic_quality.json", "panoptic_segments.json"):
        with open(os.path.join(folder, name)) as f:
            row.update(json.load(f))
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join("output", "panoptic_runs"))
    p.add_argument("--cues", default=os.path.join("output", "bench_panoptic", "cues_train_gradcam"))
    p.add_argument("--round", action="store_true", help="also the weak model's next-round labels (§3.4)")
    args = p.parse_args()
    os.environ.setdefault("WSIS_DATASETS", os.path.join(REPO, "..", "shared", "data"))
    os.makedirs(os.path.join(REPO, args.out), exist_ok=True)
    timings, rows, label_pq = {}, {}, {}
    for setting in ("weak", "semi50", "full"):
        folder, metrics = labels(setting, args.out, args.cues)
        label_pq[setting] = metrics["PQ"]
        for k in (1, 2):
            rows[(setting, k)] = stage(setting, k, folder, args.out, timings)
        rows[(setting, "fit")] = train_fit(setting, args.out, timings)
    print("val half (stage 1, stage 2) and the train half itself (fit: stage 2 against the true labels)")
    print(f"{'setting':8} {'stage':6} {'labels PQ':>9} " + " ".join(f"{c:>8}" for c in COLUMNS))
    for (setting, k), row in sorted(rows.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        print(f"{setting:8} {k:<6} {label_pq[setting]:9.1f} " + " ".join(f"{row.get(c, float('nan')):8.2f}"
                                                                        for c in COLUMNS))
    for k in (1, 2):
        full = rows[("full", k)]["PQ"]
        for setting in ("weak", "semi50"):
            ratio = rows[(setting, k)]["PQ"] / full if full else float("nan")
            print(f"stage {k}: {setting} / full PQ = {ratio:.2f}")
    if args.round:
        folder = os.path.join("output", "panoptic", "train_round1")
        if not os.path.isfile(os.path.join(REPO, folder, "metrics.json")):
            run([sys.executable, "tools/wsps_panoptic_round.py", "--config-file", CONFIG + "_crf.yaml", "--json",
                 f"{HALVES}/annotations/instances_train.json", "--images", f"{HALVES}/train", "--out", folder,
                 "--no-progress", "MODEL.WEIGHTS", os.path.join(args.out, "weak", "stage2", "model_final.pth")],
                os.path.join(REPO, args.out, "round1.log"))
        with open(os.path.join(REPO, folder, "metrics.json")) as f:
            m = json.load(f)
        print(f"next-round labels of the weak model (train half): PQ {m['PQ']:.1f}, things {m['PQ_th']:.1f}, "
              f"stuff {m['PQ_st']:.1f}, void {m['void_fraction']:.3f} (iteration 0: PQ {label_pq['weak']:.1f})")
    if timings:
        print("training wall time (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))


if __name__ == "__main__":
    main()
