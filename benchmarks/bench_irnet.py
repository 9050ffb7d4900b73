#!/usr/bin/env python
"""
IRNet end to end on the copy-paste set, from scratch on a CPU (needs detectron2), through the project's own commands,
and the random walk's memory and time.

  walk:   sparse (wsis) vs dense (the official form) random walk, t = 256, radius 5, β = 10, 4 score maps: peak memory
          (the process's max RSS above its baseline, one process per case) and seconds at 32², 64², 256², 512² grids
          and a 1024 × 2048 image (256 × 512 grid); dense only where its (HW)² matrices fit in memory, otherwise its
          size is computed; sparse == dense within 1e-5 where both run.
  labels: from benchmarks/bench_cam.py's copy-paste work (the classifier, the train split's cues and IR labels; made
          here if missing): IRNet trained by tools/train_net.py, label synthesis by tools/make_pseudo_masks.py
          --method irnet with 1 and 2 workers (throughput), the ablation without the walk (WSIS.IRNET.WALK_STEPS 0)
          and the CAM-components baseline (connected components of the thresholded CAM, the threshold of the val
          split's best CAM mIoU); instance AP^r at 0.25 / 0.5 / 0.75 and semantic mIoU on the training images.
  mrcnn:  Proxy Mask R-CNN (R-18-FPN from scratch) trained on IRNet's pseudo masks and on the true masks, same
          schedule: mask AP^r and COCO mask AP on the val split.

Every stage is skipped when its output exists (delete --work to start again). Prints tables; writes
<work>/summary.json.

    python benchmarks/bench_irnet.py                      # everything
    python benchmarks/bench_irnet.py --stages walk
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cam  # noqa: E402

REPO = bench_cam.REPO
CONFIGS = os.path.join(REPO, "projects", "IRNet", "configs")
WALK_GRIDS = [(32, 32), (64, 64), (256, 256), (512, 512), (256, 512)]
DENSE_LIMIT = 8 * 2 ** 30  # bytes: the dense case runs when its matrices (two of (HW)² float64) fit in this
IRNET_CONFIG = os.path.join(CONFIGS, "irnet_R18_scratch_copy_paste.yaml")
IRNET_ITERS = bench_cam.config_max_iter(IRNET_CONFIG)  # IRNet's copy-paste schedule


def _rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # bytes (Linux: KiB)


def walk_case(method, h, w):
    """One case in this process: prints a JSON line {seconds, peak_bytes, checksum}."""
    import torch

    from wsis.methods.irnet.walk import random_walk, random_walk_dense

    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    scores, boundary = torch.rand(4, h, w, generator=g), torch.rand(h, w, generator=g) ** 3
    base = _rss()
    start = time.time()
    if method == "synthesis":  # all of label synthesis for a (4h × 4w) image: centroids, walk, instances, semantic
        from wsis.methods.irnet.synthesis import synthesize

        # a field pointing at the nearest of 8 centres (8 instances), as a trained IRNet's roughly is
        centres = torch.rand(8, 2, generator=g) * torch.tensor([h - 1.0, w - 1.0])
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                indexing="ij")
        to = centres[:, :, None, None] - torch.stack([ys, xs])[None]  # (8, 2, h, w)
        disp = to.gather(0, to.norm(dim=1).argmin(0)[None, None].expand(1, 2, h, w))[0]
        res = synthesize(scores[:2], [0, 1], boundary, disp, 4, 4 * h, 4 * w)
        seconds = time.time() - start
        print(json.dumps({"seconds": seconds, "peak_bytes": _rss() - base, "instances": len(res["instances"])}))
        return
    fn = random_walk if method == "sparse" else random_walk_dense
    out = fn(scores, boundary, radius=5, beta=10, steps=256)
    seconds = time.time() - start
    if h * w <= 64 * 64:
        torch.save(out, os.path.join(os.environ["WALK_OUT"], f"{method}_{h}x{w}.pt"))
    print(json.dumps({"seconds": seconds, "peak_bytes": _rss() - base}))


def walk_stage(work):
    import torch

    out_dir = os.path.join(work, "walk")
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for h, w in WALK_GRIDS:
        row = {"grid": f"{h}x{w}", "dense_matrix_bytes": 4 * (h * w) ** 2}
        for method in ("sparse", "dense"):
            if method == "dense" and 2 * 8 * (h * w) ** 2 > DENSE_LIMIT:
                continue
            r = subprocess.run([sys.executable, __file__, "--walk-case", method, str(h), str(w)], cwd=REPO,
                               capture_output=True, text=True, env=dict(os.environ, WALK_OUT=out_dir))
            if r.returncode:
                sys.exit(f"walk case {method} {h}x{w} failed:\n{r.stderr[-2000:]}")
            row[method] = json.loads(r.stdout.strip().splitlines()[-1])
        if (h, w) == (256, 512):  # a 1024 × 2048 image: the whole synthesis too
            r = subprocess.run([sys.executable, __file__, "--walk-case", "synthesis", str(h), str(w)], cwd=REPO,
                               capture_output=True, text=True, env=dict(os.environ, WALK_OUT=out_dir))
            if r.returncode:
                sys.exit(f"synthesis case {h}x{w} failed:\n{r.stderr[-2000:]}")
            row["synthesis_1024x2048"] = json.loads(r.stdout.strip().splitlines()[-1])
        if "dense" in row:
            a = torch.load(os.path.join(out_dir, f"sparse_{h}x{w}.pt"))
            b = torch.load(os.path.join(out_dir, f"dense_{h}x{w}.pt"))
            row["max_abs_difference"] = float((a - b).abs().max())
        rows.append(row)
    return rows


def _ap_r_of_instances(per_image, gt_dicts, num_classes):
    from wsis.evaluation.ap_r import InstanceAPAccumulator

    acc = InstanceAPAccumulator(num_classes, iou_thresholds=(0.25, 0.5, 0.75))
    for d in gt_dicts:
        gts = [{"category_id": a["category_id"], "segmentation": a["segmentation"], "iscrowd": a.get("iscrowd", 0)}
               for a in d["annotations"]]
        preds = [{"category_id": p["category_id"], "score": p["score"], "segmentation": p["mask"]}
                 for p in per_image.get(d["image_id"], [])]
        acc.add(preds, gts, (d["height"], d["width"]))
    return acc.summarize()


def _semantic_miou(label_of, gt_dicts, num_classes, gt_folder):
    import cv2

    from wsis.evaluation.pseudo_quality import PseudoPixelQualityAccumulator

    acc = PseudoPixelQualityAccumulator(num_classes + 1, ignore_label=255, background_id=0)
    for d in gt_dicts:
        gt = cv2.imread(os.path.join(gt_folder, f"{d['image_id']}.png"), cv2.IMREAD_UNCHANGED)
        acc.add(label_of(d).astype("int64"), gt.astype("int64"))
    return acc.summarize()["miou"]


def cam_baseline(cue_dir, gt_dicts, num_classes, threshold, gt_folder):
    """IRNet's Table 1 "CAM" row: connected components of the thresholded CAMs; and the CAM's semantic mIoU."""
    import torch

    from wsis.data.cue_store import CueStore
    from wsis.evaluation.localization import cam_label_map
    from wsis.methods.cam.localization import upsample_cams
    from wsis.methods.irnet.synthesis import cam_components

    store = CueStore(cue_dir)
    per_image, labels = {}, {}
    for d in gt_dicts:
        classes, cams = store[d["image_id"]]
        stride = store.entries[d["image_id"]]["stride"]
        cams_t = torch.from_numpy(cams)
        per_image[d["image_id"]] = cam_components(cams_t, classes.tolist(), stride, d["height"], d["width"], threshold)
        up = upsample_cams(cams_t, d["height"], d["width"], stride).numpy()
        labels[d["image_id"]] = cam_label_map(up, classes, threshold)
    res = _ap_r_of_instances(per_image, gt_dicts, num_classes)
    res["semantic_miou"] = _semantic_miou(lambda d: labels[d["image_id"]], gt_dicts, num_classes, gt_folder)
    return res


def label_stage(work, args, res):
    import cv2

    from wsis.data.coco_weak import load_coco_instances

    cam_work = os.path.join(args.cam_work, "copy_paste")
    spec = bench_cam.SETS["copy_paste"]
    cam_config = os.path.join(bench_cam.CONFIGS, spec["config"])
    cam_weights = os.path.join(cam_work, "cam", "model_final.pth")
    if not os.path.exists(cam_weights):
        sys.exit(f"no classifier at {cam_weights}: run benchmarks/bench_cam.py --sets copy_paste first")
    bench_cam.train_label_stage(cam_work, spec, cam_config, cam_weights, args.workers, res.setdefault("ir_labels", {}))
    cues, ir_labels = os.path.join(cam_work, "cues_train_cam"), os.path.join(cam_work, "labels_train_irnet")
    train_json, train_images = spec["train"]
    gt_dicts, _ = load_coco_instances(train_json, train_images, supervision="mask")
    num_classes = 5
    gt_folder = os.path.join(bench_cam.CP_ROOT, "semantic", "train")

    config = IRNET_CONFIG
    irnet_dir = os.path.join(work, "irnet")
    weights = os.path.join(irnet_dir, "model_final.pth")
    if not os.path.exists(weights):
        res["irnet_train_seconds"] = bench_cam.sh(
            ["tools/train_net.py", "--config-file", config, "MODEL.WEIGHTS", cam_weights, "WSIS.DATA.SEMANTIC_LABELS",
             f"('{ir_labels}',)", "SOLVER.MAX_ITER", str(args.irnet_iters), "OUTPUT_DIR", irnet_dir, "SEED", "0"],
            os.path.join(work, "irnet_train.log"))
    res["irnet_iters"] = args.irnet_iters
    base = ["tools/make_pseudo_masks.py", "--method", "irnet", "--json", train_json, "--images", train_images,
            "--config-file", config, "--no-progress", "--num-vis", "4"]
    opts = ["MODEL.WEIGHTS", weights, "WSIS.IRNET.CUES", cues]
    # throughput on one sixth of the images (200), 1 and 2 workers; quality on all of them
    shard = ["--num-shards", "6", "--shard-index", "0"]
    variants = {"irnet": ([], [], 2), "irnet_no_walk": ([], ["WSIS.IRNET.WALK_STEPS", "0"], 2),
                "throughput_1_worker": (shard, [], 1), "throughput_2_workers": (shard, [], 2)}
    res.setdefault("labels", {})
    for name, (flags, extra, workers) in variants.items():
        out = os.path.join(work, f"pseudo_{name}")
        if not os.path.exists(os.path.join(out, "metrics.json")):
            start = time.time()
            bench_cam.sh(base + flags + ["--out", out, "--workers", str(workers)] + opts + extra,
                os.path.join(work, f"{name}.log"))
            res["labels"].setdefault(name, {})["seconds"] = time.time() - start
        m = bench_cam.read(os.path.join(out, "metrics.json"))
        entry = res["labels"].setdefault(name, {})
        if name.startswith("throughput"):
            entry.update(images=m["num_images"], images_per_s=m["num_images"] / entry["seconds"])
            continue
        entry.update({k: m[k] for k in ("AP^r@0.25", "AP^r@0.5", "AP^r@0.75", "num_pseudo_instances")})
        entry["images_per_s"] = m["num_images"] / entry["seconds"] if entry.get("seconds") else None
        sem = os.path.join(out, "semantic_irnet")
        entry["semantic_miou"] = _semantic_miou(
            lambda d: cv2.imread(os.path.join(sem, f"{d['image_id']}.png"), cv2.IMREAD_UNCHANGED), gt_dicts,
            num_classes, gt_folder)
    if "cam_components" not in res["labels"]:
        threshold = bench_cam.read(os.path.join(cam_work, "cues_val_cam", "metrics.json"))["cues/best_threshold"]
        res["labels"]["cam_components"] = dict(cam_baseline(cues, gt_dicts, num_classes, threshold, gt_folder),
                                               threshold=threshold)
    return res


def mrcnn_stage(work, args, res):
    config = os.path.join(CONFIGS, "mask_rcnn_R18_FPN_scratch_copy_paste.yaml")
    store = os.path.join(work, "pseudo_irnet", "pseudo_masks.json")
    runs = {"irnet_pseudo_masks": ["WSIS.DATA.PSEUDO_MASKS", f"('{store}',)"],
            "true_masks": ["DATASETS.TRAIN", "('copy_paste_train',)", "WSIS.DATA.PSEUDO_MASKS", "()"]}
    for name, opts in runs.items():
        out = os.path.join(work, f"mrcnn_{name}")
        log = os.path.join(work, f"mrcnn_{name}.log")
        if not os.path.exists(os.path.join(out, "model_final.pth")):
            res[f"{name}_seconds"] = bench_cam.sh(["tools/train_net.py", "--config-file", config, "SOLVER.MAX_ITER",
                                          str(args.mrcnn_iters), "SOLVER.STEPS", f"({int(args.mrcnn_iters * 0.9)},)",
                                          "OUTPUT_DIR", out, "SEED", "0"] + opts, log)
        segm, apr = bench_cam.copypaste(log, "segm"), bench_cam.copypaste(log, "segm_APr")
        res[name] = {"coco_segm_AP": segm.get("AP"), "coco_segm_AP50": segm.get("AP50"),
                     **{k: apr.get(k) for k in ("AP^r@0.25", "AP^r@0.5", "AP^r@0.75", "AP^r_vol")}}
    res["iters"] = args.mrcnn_iters
    return res


def tables(summary):
    rows = []
    if "walk" in summary:
        rows += ["| grid | sparse s | sparse peak MiB | dense s | dense peak MiB | dense matrix GiB | max |diff| |",
                 "|---|---|---|---|---|---|---|"]
        for r in summary["walk"]:
            d = r.get("dense")
            rows.append(f"| {r['grid']} | {r['sparse']['seconds']:.2f} | {r['sparse']['peak_bytes'] / 2**20:.0f} | "
                        f"{d['seconds']:.2f} | {d['peak_bytes'] / 2**20:.0f} | " if d else
                        f"| {r['grid']} | {r['sparse']['seconds']:.2f} | {r['sparse']['peak_bytes'] / 2**20:.0f} | "
                        "does not fit | — | ")
            rows[-1] += f"{r['dense_matrix_bytes'] / 2**30:.3g} | {r.get('max_abs_difference', '—')} |"
            if "synthesis_1024x2048" in r:
                syn = r["synthesis_1024x2048"]
                rows.append(f"| whole label synthesis, 1024x2048 image | {syn['seconds']:.2f} | "
                            f"{syn['peak_bytes'] / 2**20:.0f} | | | | |")
    if "labels" in summary:
        rows += ["", "| train pseudo labels | AP^r@0.25 | AP^r@0.5 | AP^r@0.75 | semantic mIoU | images/s |",
                 "|---|---|---|---|---|---|"]
        for name, m in summary["labels"]["labels"].items():
            if name.startswith("throughput"):
                rows.append(f"| {name} ({m['images']} images) | | | | | {m['images_per_s']:.2f} |")
                continue
            ips = f"{m['images_per_s']:.2f}" if m.get("images_per_s") else "—"
            rows.append(f"| {name} | {m['AP^r@0.25']:.1f} | {m['AP^r@0.5']:.1f} | {m['AP^r@0.75']:.1f} | "
                        f"{m['semantic_miou']:.3f} | {ips} |")
    if "mrcnn" in summary:
        m = summary["mrcnn"]
        keys = ("coco_segm_AP", "coco_segm_AP50", "AP^r@0.25", "AP^r@0.5", "AP^r@0.75", "AP^r_vol")
        rows += ["", f"Proxy Mask R-CNN, {m['iters']} iterations, val split", "| trained on | " + " | ".join(keys) + " |",
                 "|---" * (len(keys) + 1) + "|"]
        for name in ("irnet_pseudo_masks", "true_masks"):
            rows.append(f"| {name} | " + " | ".join(f"{m[name].get(k, float('nan')):.1f}" for k in keys) + " |")
        ratio = [m["irnet_pseudo_masks"].get(k, 0) / m["true_masks"][k] if m["true_masks"].get(k) else float("nan")
                 for k in keys]
        rows.append("| weak / full | " + " | ".join(f"{r:.2f}" for r in ratio) + " |")
    return "\n".join(rows)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--walk-case":
        return walk_case(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stages", nargs="+", default=["walk", "labels", "mrcnn"], choices=["walk", "labels", "mrcnn"])
    p.add_argument("--work", default=os.path.join(REPO, "output", "bench_irnet"))
    p.add_argument("--cam-work", default=os.path.join(REPO, "output", "bench_cam"))
    p.add_argument("--irnet-iters", type=int, default=IRNET_ITERS)
    p.add_argument("--mrcnn-iters", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)
    summary_file = os.path.join(args.work, "summary.json")
    summary = bench_cam.read(summary_file) if os.path.exists(summary_file) else {}
    for stage in args.stages:
        if stage == "walk":
            summary["walk"] = summary.get("walk") or walk_stage(args.work)
        elif stage == "labels":
            summary["labels"] = label_stage(args.work, args, summary.get("labels", {}))
        else:
            summary["mrcnn"] = mrcnn_stage(args.work, args, summary.get("mrcnn", {}))
        with open(summary_file, "w") as f:
            json.dump(summary, f, indent=2)
    print(tables(summary))


if __name__ == "__main__":
    main()
