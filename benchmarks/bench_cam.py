#!/usr/bin/env python
"""
CAM / Grad-CAM end to end, from scratch on a CPU (needs detectron2), through the project's own commands:

  1. the copy-paste set (tools/make_copy_paste.py, defaults) unless it exists;
  2. the classifier (tools/train_net.py, projects/CAM/configs/cam_R18_scratch_<set>.yaml): classification mAP / F1;
  3. cues of the val split (tools/make_cues.py): CAM and Grad-CAM, 4 scales + flip, and single-scale CAM: the
     "CAM mIoU" at the best background threshold against a centre-Gaussian prior computed in the same run,
     throughput (images/s) and store size per image;
  4. IRNet's confident areas from each (tools/make_semantic_labels.py, and the same for the prior's maps): fg / bg
     precision and recall;
  5. (copy-paste) cues and IRNet pseudo labels of the train split, their own quality, a SemanticSegmentor trained on
     them (WSIS.DATA.SEMANTIC_LABELS) and its mIoU on the val split's true maps.

Every stage is skipped when its output exists (delete --work to start again). Prints a table; writes
<work>/<set>/summary.json.

    python benchmarks/bench_cam.py                     # copy-paste + coco_tiny
    python benchmarks/bench_cam.py --sets copy_paste --seg-iters 300
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "projects", "CAM", "configs")
SHARED = os.path.normpath(os.path.join(REPO, "..", "shared", "data"))
CP_ROOT = os.path.join(REPO, "datasets", "copy_paste_coco_tiny")
SETS = {
    "copy_paste": {"config": "cam_R18_scratch_copy_paste.yaml", "num_classes": 5,
                   "train": (os.path.join(CP_ROOT, "annotations", "instances_train.json"), os.path.join(CP_ROOT, "train")),
                   "val": (os.path.join(CP_ROOT, "annotations", "instances_val.json"), os.path.join(CP_ROOT, "val"))},
    "coco_tiny": {"config": "cam_R18_scratch_coco_tiny.yaml", "num_classes": 80,
                  "train": (os.path.join(SHARED, "coco_tiny", "annotations", "instances_train2017.json"),
                            os.path.join(SHARED, "coco_tiny", "train2017")),
                  "val": (os.path.join(SHARED, "coco_tiny", "annotations", "instances_val2017.json"),
                          os.path.join(SHARED, "coco_tiny", "val2017"))},
}


def config_max_iter(config):
    """SOLVER.MAX_ITER of a config file (the schedule a benchmark trains, read from the config, not repeated)."""
    with open(config) as f:
        return yaml.safe_load(f)["SOLVER"]["MAX_ITER"]


CAM_ITERS = config_max_iter(os.path.join(CONFIGS, SETS["copy_paste"]["config"]))  # the copy-paste schedule


def sh(args, log):
    """Run a command of the project (cwd: the repository), its output into ``log``; returns the wall seconds."""
    env = dict(os.environ, WSIS_DATASETS=os.environ.get("WSIS_DATASETS", SHARED), WSIS_COPY_PASTE=CP_ROOT)
    start = time.time()
    with open(log, "w") as f:
        rc = subprocess.call([sys.executable] + args, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=env)
    if rc:
        sys.exit(f"failed ({rc}): {' '.join(args)}; see {log}")
    return time.time() - start


def read(path):
    with open(path) as f:
        return json.load(f)


def prior_store(cue_dir, out_dir):
    """A cue store of centre-Gaussian maps for the same images and classes as ``cue_dir`` (the baseline)."""
    from wsis.data.cue_store import CueStore, CueWriter
    from wsis.methods.cam.localization import center_gaussian_prior

    if os.path.exists(os.path.join(out_dir, "cues.json")):
        return
    store = CueStore(cue_dir)
    prov = dict(store.provenance, method="center_prior", params={"sigma": 0.25})
    with CueWriter(out_dir, prov, overwrite=True) as writer:
        for image_id in store.ids():
            e = store.entries[image_id]
            classes, cams = store[image_id]
            prior = center_gaussian_prior(cams.shape[1], cams.shape[2], len(classes)).numpy()
            writer.add({"image_id": image_id, "height": e["height"], "width": e["width"], "stride": e["stride"],
                        "classes": classes.tolist(), "cams": prior})


def run_set(name, spec, args):
    work = os.path.join(args.work, name)
    os.makedirs(work, exist_ok=True)
    summary_file = os.path.join(work, "summary.json")
    res = read(summary_file) if os.path.exists(summary_file) else {}
    config = os.path.join(CONFIGS, spec["config"])
    cam_dir = os.path.join(work, "cam")
    iters = args.cam_iters if name == "copy_paste" else args.coco_iters
    weights = classifier_stage(work, config, iters, res)
    cls_file = os.path.join(cam_dir, "inference", "classification.json")
    if not os.path.exists(cls_file):
        sh(["tools/train_net.py", "--config-file", config, "--eval-only", "MODEL.WEIGHTS", weights, "OUTPUT_DIR",
            cam_dir], os.path.join(work, "cam_eval.log"))
    c = read(cls_file)
    res["classification"] = {k: c[k] for k in ("mAP", "F1", "precision", "recall", "num_images")}

    val_json, val_images = spec["val"]
    base = ["tools/make_cues.py", "--config-file", config, "--json", val_json, "--images", val_images,
            "--workers", str(args.workers), "--no-progress"]
    variants = {"cam": [], "gradcam": ["--method", "gradcam"],
                "cam_single_scale": ["MODEL.CAM.SCALES", "(1.0,)", "MODEL.CAM.FLIP", "False"]}
    res.setdefault("cues", {})
    for v, extra in variants.items():
        out = os.path.join(work, f"cues_val_{v}")
        opts = [o for o in extra if not o.startswith("--") and o != "gradcam"]
        flags = [o for o in extra if o.startswith("--") or o == "gradcam"]
        if not os.path.exists(os.path.join(out, "metrics.json")):
            sh(base + flags + ["--out", out, "MODEL.WEIGHTS", weights] + opts, os.path.join(work, f"cues_val_{v}.log"))
        m = read(os.path.join(out, "metrics.json"))
        # throughput from the job's own clock (model load included), for the given --workers
        res["cues"][v] = {"seconds": m["seconds"], "images_per_s": m["num_images"] / m["seconds"],
                          "bytes_per_image": m["bytes_per_image"], "miou": m["cues/best_miou"],
                          "threshold": m["cues/best_threshold"], "prior_miou": m["prior/best_miou"],
                          "prior_threshold": m["prior/best_threshold"]}
    # IRNet's confident areas (fg 0.30 / bg 0.05, CRF) from each cue, and from the prior
    res.setdefault("confident", {})
    for v in ("cam", "gradcam", "prior"):
        cue_dir = os.path.join(work, f"cues_val_{v}")
        if v == "prior":
            prior_store(os.path.join(work, "cues_val_cam"), cue_dir)
        out = os.path.join(work, f"labels_val_{v}")
        if not os.path.exists(os.path.join(out, "metrics.json")):
            sh(["tools/make_semantic_labels.py", "--cues", cue_dir, "--json", val_json, "--images", val_images,
                "--out", out, "--workers", str(args.workers), "--no-progress"], os.path.join(work, f"labels_val_{v}.log"))
        m = read(os.path.join(out, "metrics.json"))
        res["confident"][v] = {k: m[k] for k in ("fg_precision", "fg_recall", "bg_precision", "bg_recall",
                                                 "fraction_ignored", "miou")}
    if name == "copy_paste" and args.seg_iters > 0:
        res["semantic"] = semantic_stage(work, spec, config, weights, args, res.get("semantic", {}))
    with open(summary_file, "w") as f:
        json.dump(res, f, indent=2)
    return res


def classifier_stage(work, config, iters, res):
    """The CAM classifier of ``config`` trained for ``iters`` into ``<work>/cam`` (kept if there); its checkpoint.
    DSRG's benchmark starts from it too."""
    cam_dir = os.path.join(work, "cam")
    weights = os.path.join(cam_dir, "model_final.pth")
    if not os.path.exists(weights):
        res["train_seconds"] = sh(["tools/train_net.py", "--config-file", config, "SOLVER.MAX_ITER", str(iters),
                                   "OUTPUT_DIR", cam_dir, "SEED", "0"], os.path.join(work, "cam_train.log"))
    res["cam_iters"] = iters
    res.setdefault("train_seconds", _training_seconds(os.path.join(work, "cam_train.log")))
    return weights


def cue_stage(work, spec, config, weights, split, workers):
    """CAM cues (4 scales + flip) of ``split`` in ``<work>/cues_<split>_cam`` (kept if there); the folder."""
    json_file, images = spec[split]
    cues = os.path.join(work, f"cues_{split}_cam")
    if not os.path.exists(os.path.join(cues, "metrics.json")):
        sh(["tools/make_cues.py", "--config-file", config, "--json", json_file, "--images", images,
            "--workers", str(workers), "--no-progress", "--out", cues, "MODEL.WEIGHTS", weights],
           os.path.join(work, f"cues_{split}_cam.log"))
    return cues


def train_label_stage(work, spec, config, weights, workers, res):
    """CAM cues of the train split (``<work>/cues_train_cam``) and its IRNet / WSPS semantic pseudo labels
    (``<work>/labels_train_{irnet,wsps}``) with their quality; IRNet's benchmark starts from them too."""
    train_json, train_images = spec["train"]
    cues = cue_stage(work, spec, config, weights, "train", workers)
    for labels in ("irnet", "wsps"):
        out = os.path.join(work, f"labels_train_{labels}")
        if not os.path.exists(os.path.join(out, "metrics.json")):
            sh(["tools/make_semantic_labels.py", "--cues", cues, "--json", train_json, "--images", train_images,
                "--out", out, "--workers", str(workers), "--no-progress", "WSIS.CAM.LABELS", labels],
               os.path.join(work, f"labels_train_{labels}.log"))
        m = read(os.path.join(out, "metrics.json"))
        res[f"labels_{labels}"] = {k: m[k] for k in ("miou", "precision", "recall", "fraction_ignored")}
    return res


def semantic_stage(work, spec, config, weights, args, res):
    train_label_stage(work, spec, config, weights, args.workers, res)
    seg_config = os.path.join(CONFIGS, "semantic_R18_FPN_scratch_copy_paste.yaml")
    for labels, folder in (("irnet", os.path.join(work, "labels_train_irnet")),
                           ("true", os.path.join(CP_ROOT, "semantic", "train"))):
        seg_dir = os.path.join(work, f"semantic_{labels}")
        log = os.path.join(work, f"semantic_{labels}.log")
        if not os.path.exists(os.path.join(seg_dir, "model_final.pth")):
            res[f"segmentor_{labels}_seconds"] = sh(
                ["tools/train_net.py", "--config-file", seg_config, "SOLVER.MAX_ITER", str(args.seg_iters),
                 "WSIS.DATA.SEMANTIC_LABELS", f"('{folder}',)", "OUTPUT_DIR", seg_dir, "SEED", "0"], log)
        res[f"segmentor_{labels}_miou"] = _sem_seg_miou(log)
    res["segmentor_iters"] = args.seg_iters
    return res


def _training_seconds(log):
    """detectron2's "Total training time: H:MM:SS" of a training log (a run whose summary was not written)."""
    with open(log) as f:
        for line in f:
            if "Total training time:" in line:
                h, m, sec = line.split("Total training time:")[1].split()[0].split(":")
                return 3600 * int(h) + 60 * int(m) + int(sec)
    return None


def copypaste(log, task):
    """The last ``task`` evaluation printed by detectron2's ``print_csv_format`` in the log file ``log`` ("copypaste:
    Task: <task>", a header line, a values line) as {name: value}; {} when the log has none."""
    with open(log) as f:
        blocks = re.findall(rf"copypaste: Task: {re.escape(task)}\n.*copypaste: (\S+)\n.*copypaste: (\S+)\n", f.read())
    return dict(zip(blocks[-1][0].split(","), map(float, blocks[-1][1].split(",")))) if blocks else {}


def _sem_seg_miou(log):
    """mIoU (percent) of the segmentor's final evaluation, from its log."""
    res = copypaste(log, "sem_seg")
    if "mIoU" not in res:
        raise RuntimeError(f"no sem_seg result in {log}")
    return res["mIoU"]


def table(name, res):
    rows = [f"## {name}", f"classifier: {res['cam_iters']} iterations, {res.get('train_seconds', 0) / 60:.1f} min; "
            f"val mAP {res['classification']['mAP']:.1f}, F1 {res['classification']['F1']:.1f} "
            f"({res['classification']['num_images']} images)",
            "| cue | mIoU (best thr) | prior mIoU | images/s | KiB/image |", "|---|---|---|---|---|"]
    for v, c in res["cues"].items():
        rows.append(f"| {v} | {c['miou']:.3f} ({c['threshold']:.2f}) | {c['prior_miou']:.3f} ({c['prior_threshold']:.2f}) "
                    f"| {c['images_per_s']:.2f} | {c['bytes_per_image'] / 1024:.1f} |")
    rows += ["| confident areas | fg precision | fg recall | bg precision | bg recall | ignored |", "|---|---|---|---|---|---|"]
    for v, c in res["confident"].items():
        rows.append(f"| {v} | {c['fg_precision']:.3f} | {c['fg_recall']:.3f} | {c['bg_precision']:.3f} | "
                    f"{c['bg_recall']:.3f} | {c['fraction_ignored']:.3f} |")
    if "semantic" in res:
        s = res["semantic"]
        for labels in ("irnet", "wsps"):
            lab = s[f"labels_{labels}"]
            rows.append(f"train pseudo labels ({labels}): mIoU {lab['miou']:.3f} over labelled pixels, "
                        f"precision {lab['precision']:.3f}, recall {lab['recall']:.3f}, ignored {lab['fraction_ignored']:.3f}")
        rows.append(f"segmentor ({s['segmentor_iters']} it) on val true maps: trained on IRNet pseudo labels "
                    f"{s['segmentor_irnet_miou']:.1f} mIoU, on the true train maps {s['segmentor_true_miou']:.1f}")
    return "\n".join(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    p.add_argument("--work", default=os.path.join(REPO, "output", "bench_cam"))
    p.add_argument("--cam-iters", type=int, default=CAM_ITERS)
    p.add_argument("--coco-iters", type=int, default=250)
    p.add_argument("--seg-iters", type=int, default=600)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)
    if "copy_paste" in args.sets and not os.path.exists(SETS["copy_paste"]["train"][0]):
        sh(["tools/make_copy_paste.py", "--out", CP_ROOT], os.path.join(args.work, "copy_paste.log"))
    for name in args.sets:
        print(table(name, run_set(name, SETS[name], args)))


if __name__ == "__main__":
    main()
