#!/usr/bin/env python
"""
DSRG end to end (needs detectron2), through the project's own commands:

  speed       region growing per batch (official and BFS) and the training CRF, against the network's own
              forward + backward (DSRGHead on ResNet-101, projects/DSRG/configs/dsrg_R_101_voc.yaml, no weights)
              and against the per-pixel queue oracle, at 321x321, batch 4, 21 classes, on this CPU; identical labels
              to the oracle on random cases.
  copy_paste  on the copy-paste set (made if missing): the CAM classifier and CAM cues of both splits (the
              folders of benchmarks/bench_cam.py, shared with it), seed precision / recall; DSRGHead trained with
              growing and with fixed seeds (the paper's ablation), same schedule, val mIoU; the train seeds grown by
              the trained head vs the seeds alone; the retraining stage on the head's final labels.
  coco_panoptic_halves
              the same on coco_panoptic_val100 things + stuff (133 classes), converted and split in two halves of 50
              images (tools/convert_coco_panoptic.py): train on the first, evaluate on the second.

Every stage is skipped when its output exists (delete --work to start again). Writes <work>/summary.json and
<work>/<set>/summary.json.

    python benchmarks/bench_dsrg.py                          # all three
    python benchmarks/bench_dsrg.py --stages speed copy_paste
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cam  # noqa: E402
from bench_cam import CAM_ITERS, CP_ROOT, REPO, SETS, _sem_seg_miou, read, sh  # noqa: E402

CONFIGS = os.path.join(REPO, "projects", "DSRG", "configs")


def _timed(fn, reps):
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def speed(args):
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    from detectron2.utils.events import EventStorage

    import wsis.modeling  # noqa: F401
    from wsis.config import add_wsis_config
    from wsis.core.meanfield import LocalCRFParams, local_crf
    from wsis.methods.dsrg.growing import region_growing, region_growing_reference

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    b, c, size = 4, 21, 321
    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(os.path.join(CONFIGS, "dsrg_R_101_voc.yaml"))
    cfg.merge_from_list(["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", "MODEL.DSRG.GROWING", "none",
                         "MODEL.DSRG.CONSTRAIN_WEIGHT", "0.0"])
    model = build_model(cfg).train()
    batch = []
    for i in range(b):
        seeds = torch.full((size, size), 255, dtype=torch.long)
        seeds[:60], seeds[150:250, 100:220] = 0, 1 + i
        batch.append({"image": torch.randint(0, 255, (3, size, size), generator=g).float(), "sem_seg": seeds,
                      "image_labels": [i], "height": size, "width": size})

    def step():
        model.zero_grad()
        with EventStorage(0):
            sum(model(batch).values()).backward()

    torch.set_num_threads(args.threads)
    res = {"threads": args.threads, "batch": b, "classes": c, "size": size,
           "network_step_s": _timed(step, args.reps)}
    stride = model.sem_seg_head.common_stride
    res["model_logits"] = (size + stride - 1) // stride

    def case(h, trial):
        gg = torch.Generator().manual_seed(trial)
        logits = torch.nn.functional.avg_pool2d(torch.randn(b, c, h, h, generator=gg) * 4, 5, 1, 2) * 6
        probs = torch.softmax(logits, 1)
        seeds = probs.argmax(1)
        seeds[torch.rand(b, h, h, generator=gg) > 0.3] = -1
        tags = torch.rand(b, c, generator=gg) > 0.8
        return probs, seeds, tags

    res["grid"] = {}
    for h in sorted({res["model_logits"], 41}):
        probs, seeds, tags = case(h, 0)
        images = torch.rand(b, 3, size, size, generator=g) * 255
        r = {}
        for variant in ("official", "bfs"):
            r[f"grow_{variant}_s"] = _timed(lambda: region_growing(probs, seeds, tags, 0.85, 0.99, variant), args.reps)
            start = time.perf_counter()
            region_growing_reference(probs, seeds, tags, 0.85, 0.99, variant)
            r[f"oracle_{variant}_s"] = time.perf_counter() - start
        crf = LocalCRFParams(window=11)
        r["crf_s"] = _timed(lambda: local_crf(probs, images, size / h, crf, "prob", tags), args.reps)
        same = total = 0
        for trial in range(args.cases):
            p, s, t = case(h, 100 + trial)
            for variant in ("official", "bfs"):
                total += 1
                same += np.array_equal(region_growing(p, s, t, 0.6, 0.8, variant).numpy(),
                                       region_growing_reference(p, s, t, 0.6, 0.8, variant))
        r["identical_to_oracle"] = f"{same}/{total}"
        res["grid"][str(h)] = r
    return res


PANOPTIC_ROOT = os.path.join(REPO, "datasets", "coco_panoptic_val100_halves")
CAM_CONFIGS = os.path.join(REPO, "projects", "CAM", "configs")
#: each set: its CAM classifier config and iterations, its DSRG config and iterations, the json + images per split
DSRG_SETS = {
    "copy_paste": {**SETS["copy_paste"], "cam_config": "cam_R18_scratch_copy_paste.yaml", "cam_iters": CAM_ITERS,
                   "config": "dsrg_R18_scratch_copy_paste.yaml", "iters": 1500},
    "coco_panoptic_halves": {
        "cam_config": "cam_R18_scratch_coco_panoptic_halves.yaml", "cam_iters": 250,
        "config": "dsrg_R18_scratch_coco_panoptic_halves.yaml", "iters": 400, "retrain": False,
        "label_flags": ["--no-crf"],  # DenseCRF over 134 labels at 640x480: about 50 s an image on this CPU
        "train": (os.path.join(PANOPTIC_ROOT, "annotations", "instances_train.json"), os.path.join(PANOPTIC_ROOT, "train")),
        "val": (os.path.join(PANOPTIC_ROOT, "annotations", "instances_val.json"), os.path.join(PANOPTIC_ROOT, "val"))},
}


def run_set(name, args):
    """Every stage of one set (module doc); each is skipped when its output exists. Returns the figures."""
    spec = DSRG_SETS[name]
    work = os.path.join(args.work, name)
    os.makedirs(work, exist_ok=True)
    summary_file = os.path.join(work, "summary.json")
    res = read(summary_file) if os.path.exists(summary_file) else {}
    if name == "copy_paste" and not os.path.exists(spec["train"][0]):
        sh(["tools/make_copy_paste.py", "--out", CP_ROOT], os.path.join(work, "make_copy_paste.log"))
    if name == "coco_panoptic_halves" and not os.path.exists(spec["train"][0]):
        sh(["tools/convert_coco_panoptic.py", "--out", PANOPTIC_ROOT], os.path.join(work, "convert.log"))
    # CAM classifier and cues: shared with benchmarks/bench_cam.py (same folders under --cam-work)
    cam_work = os.path.join(args.cam_work, name)
    os.makedirs(cam_work, exist_ok=True)
    cam_config = os.path.join(CAM_CONFIGS, spec["cam_config"])
    cam = {}
    cam_weights = bench_cam.classifier_stage(cam_work, cam_config, spec["cam_iters"], cam)
    res["cam"] = {"iters": cam["cam_iters"], "train_seconds": cam.get("train_seconds")}
    seeds = {}
    for split in ("train", "val"):
        cues = bench_cam.cue_stage(cam_work, spec, cam_config, cam_weights, split, args.workers)
        out = seeds[split] = os.path.join(work, f"seeds_{split}")
        json_file, images = spec[split]
        if not os.path.exists(os.path.join(out, "metrics.json")):
            sh(["tools/make_semantic_labels.py", "--cues", cues, "--json", json_file, "--images", images, "--out", out,
                "--workers", str(args.workers), "--no-progress", "WSIS.CAM.LABELS", "dsrg",
                "WSIS.DSRG.SEEDS.BG_THRESHOLD", str(args.bg_threshold)], out + ".log")
        m = read(os.path.join(out, "metrics.json"))
        res[f"seeds_{split}"] = {k: m[k] for k in ("fg_precision", "fg_recall", "bg_precision", "bg_recall",
                                                   "fraction_ignored", "miou", "precision", "recall")}
    config = os.path.join(CONFIGS, spec["config"])
    iters = args.iters or spec["iters"]
    # every head starts from the CAM classifier's backbone (the only trained weights there are here)
    init = ["MODEL.WEIGHTS", cam_weights, "SOLVER.MAX_ITER", str(iters), "SEED", "0"]
    common = init + ["WSIS.DATA.SEMANTIC_LABELS", f"('{seeds['train']}',)"]
    for head, growing in (("growing", "official"), ("fixed", "none")):
        out = os.path.join(work, f"head_{head}")
        if not os.path.exists(os.path.join(out, "model_final.pth")):
            res[f"head_{head}_seconds"] = sh(["tools/train_net.py", "--config-file", config, "MODEL.DSRG.GROWING",
                                              growing, "OUTPUT_DIR", out] + common, out + ".log")
        res[f"head_{head}_miou"] = _sem_seg_miou(out + ".log")
    train_json, train_images = spec["train"]
    weights = os.path.join(work, "head_growing", "model_final.pth")
    for kind, extra in (("grown", ["--grown-from", seeds["train"]]), ("final", [])):
        out = os.path.join(work, f"labels_train_{kind}")
        if not os.path.exists(os.path.join(out, "metrics.json")):
            sh(["tools/make_dsrg_labels.py", "--config-file", config, "--json", train_json, "--images", train_images,
                "--out", out, "--no-progress"] + spec.get("label_flags", []) + extra + ["MODEL.WEIGHTS", weights],
               out + ".log")
        m = read(os.path.join(out, "metrics.json"))
        res[f"labels_train_{kind}"] = {k: m[k] for k in ("miou", "precision", "recall", "fraction_ignored")}
    out = os.path.join(work, "head_retrain")
    if not spec.get("retrain", True):  # the panoptic halves: no retraining round (not asked, CPU time)
        out = None
    elif not os.path.exists(os.path.join(out, "model_final.pth")):
        res["head_retrain_seconds"] = sh(
            ["tools/train_net.py", "--config-file", config, "MODEL.DSRG.TARGETS", "labels", "OUTPUT_DIR", out] + init
            + ["WSIS.DATA.SEMANTIC_LABELS", f"('{os.path.join(work, 'labels_train_final')}',)"], out + ".log")
    if out is not None:
        res["head_retrain_miou"] = _sem_seg_miou(out + ".log")
    res["iters"] = iters
    with open(summary_file, "w") as f:
        json.dump(res, f, indent=2)
    return res


def report(name, c):
    rows = [f"## {name}: CAM classifier {c['cam']['iters']} iterations; DSRG heads {c['iters']} iterations each"]
    for split in ("train", "val"):
        s = c[f"seeds_{split}"]
        rows.append(f"seeds ({split}): fg precision {s['fg_precision']:.3f} recall {s['fg_recall']:.3f}, bg precision "
                    f"{s['bg_precision']:.3f} recall {s['bg_recall']:.3f}, unlabelled {s['fraction_ignored']:.3f}, "
                    f"mIoU over labelled {s['miou']:.3f}")
    for kind in ("grown", "final"):
        s = c[f"labels_train_{kind}"]
        rows.append(f"train labels ({kind}, head with growing): mIoU {s['miou']:.3f}, precision {s['precision']:.3f}, "
                    f"recall {s['recall']:.3f}, unlabelled {s['fraction_ignored']:.3f}")
    retrain = f", retrained on the final labels {c['head_retrain_miou']:.1f}" if "head_retrain_miou" in c else ""
    rows.append(f"val mIoU: growing {c['head_growing_miou']:.1f}, fixed seeds {c['head_fixed_miou']:.1f}{retrain}")
    return "\n".join(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stages", nargs="+", default=["speed"] + list(DSRG_SETS), choices=["speed"] + list(DSRG_SETS))
    p.add_argument("--work", default=os.path.join(REPO, "output", "bench_dsrg"))
    p.add_argument("--cam-work", default=os.path.join(REPO, "output", "bench_cam"))
    p.add_argument("--iters", type=int, default=0, help="DSRG iterations per head (default: the set's own)")
    p.add_argument("--bg-threshold", type=float, default=0.05)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--cases", type=int, default=10)
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)
    os.environ.setdefault("WSIS_COPY_PASTE", CP_ROOT)
    os.environ.setdefault("WSIS_PANOPTIC_HALVES", PANOPTIC_ROOT)
    summary = read(os.path.join(args.work, "summary.json")) if os.path.exists(os.path.join(args.work, "summary.json")) else {}
    if "speed" in args.stages:
        summary["speed"] = speed(args)
        s = summary["speed"]
        print(f"network forward+backward (R-101 DSRGHead, batch {s['batch']}, {s['size']}px): "
              f"{s['network_step_s']:.2f} s")
        for h, r in s["grid"].items():
            print(f"  {h}x{h} logits: growing official {r['grow_official_s'] * 1e3:.1f} ms "
                  f"({100 * r['grow_official_s'] / s['network_step_s']:.2f} % of the step), bfs "
                  f"{r['grow_bfs_s'] * 1e3:.1f} ms; oracle {r['oracle_official_s'] * 1e3:.0f} / "
                  f"{r['oracle_bfs_s'] * 1e3:.0f} ms; CRF {r['crf_s'] * 1e3:.1f} ms "
                  f"({100 * r['crf_s'] / s['network_step_s']:.2f} %); identical to the oracle {r['identical_to_oracle']}")
    for name in DSRG_SETS:
        if name in args.stages:
            summary[name] = run_set(name, args)
            print(report(name, summary[name]))
    with open(os.path.join(args.work, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
