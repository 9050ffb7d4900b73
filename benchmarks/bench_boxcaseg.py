#!/usr/bin/env python
"""
BoxCaseg at small scale, all numbers from one run (projects/BoxCaseg/README.md). Needs detectron2.

1. Train the joint network from scratch (no pretrained weights exist here) on coco_tiny train boxes + ECSSD images
   1-800 (salient), once per head set of Tab. 4: "weak" (MIL only), "weak+salient" (α = 1), "all" (+ transferred).
2. Proxy masks (§3.4: exact box crop, min-max normalise, threshold 0.5, merge, drop) of the GT boxes of coco_tiny val
   (non-crowd) and ECSSD 801-1000 (box = tight box of the mask), against box-fill and GrabCut (OpenCV, rectangle
   initialisation, 5 iterations, on the box's window resampled to 128 px) computed in the same run. Metrics: mean IoU,
   mIoU* (class mean), IoU@0.5/0.75 over every box (dropped masks included: the class-agnostic quality).
3. Ablations: binarisation threshold (the paper's 0.5 and lower ones); for the "all" model α at inference and the
   drop threshold (drop rate and quality of the kept masks, Tab. 8).
4. Calibrated threshold, per variant: the binarisation threshold with the best mean IoU on the salient training images
   (ECSSD 1-800, whose masks are training supervision), then both evaluation sets at that threshold; no evaluation
   mask chooses it.
5. Throughput: training crops/s; proxy-mask generation boxes/s with 1 and 2 workers (tools/make_pseudo_masks.py --method boxcaseg's path).

    python benchmarks/bench_boxcaseg.py [--iters 1000] [--crop 128] [--out output/bench_boxcaseg]
    python benchmarks/bench_boxcaseg.py --variants all --weights output/bench_boxcaseg  # re-evaluate, no training
"""
import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "projects", "BoxCaseg", "configs",
                              "boxcaseg_coco_tiny_instant_test.yaml")
DATASETS = ("coco_tiny_val", "ecssd_val")
CALIBRATION = "ecssd_train"  # the salient training images: their masks are supervision, so choosing on them is fair
METRICS = ("mean_iou", "class_mean_iou", "iou@0.5", "iou@0.75")


def make_cfg(config, opts):
    from detectron2.config import get_cfg

    from wsis.config import add_wsis_config

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(config)
    cfg.merge_from_list(opts)
    return cfg


def load(config, opts, weights):
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    cfg = make_cfg(config, opts)
    model = build_model(cfg)
    DetectionCheckpointer(model).load(weights)
    return cfg, model.eval(), {"weights": weights}


def train(config, opts):
    from wsis.engine import WSISTrainer

    cfg = make_cfg(config, opts)
    trainer = WSISTrainer(cfg)
    trainer.resume_or_load(resume=False)
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    hist = trainer.storage.history
    last = {k: float(np.median([v for v, _ in hist(k).values()[-50:]])) for k in ("loss_mil", "loss_pixel")}
    return cfg, trainer.model.eval(), {"seconds": seconds, "crops_per_s": cfg.SOLVER.MAX_ITER * cfg.SOLVER.IMS_PER_BATCH
                                       / seconds, "final_losses_median50": last}


def predict(cfg, model, dicts):
    """image_id → (N, s, s) float32 fused probabilities of the image's non-crowd boxes."""
    from wsis.methods.boxcaseg.mapper import BoxCasegCropMapper

    mapper = BoxCasegCropMapper(cfg, is_train=False)
    with torch.no_grad():
        return {d["image_id"]: model([mapper(d)])[0]["proxy_probs"].float().cpu().numpy() for d in dicts}


def proxy_records(dicts, probs, drop_threshold=0.95, merge=True, threshold=0.5):
    from wsis.methods.boxcaseg.proxy_masks import proxy_record

    out = {}
    for d in dicts:
        anns = [a for a in d["annotations"] if not a.get("iscrowd", 0)]
        out[d["image_id"]] = proxy_record(d, anns, list(probs[d["image_id"]]), threshold, merge, drop_threshold)
    return out


def with_drop_threshold(records, drop_threshold):
    """Records made with drop threshold 0, dropped at ``drop_threshold`` (merge_and_drop's rule on the stored score)."""
    return {k: dict(r, instances=[dict(i, valid=i["valid"] and (drop_threshold <= 0 or i["score"] > drop_threshold))
                                  for i in r["instances"]]) for k, r in records.items()}


def scores(records, gt):
    from wsis.evaluation.pseudo_eval import evaluate_pseudo_masks, mark_all_valid

    m = evaluate_pseudo_masks(mark_all_valid(records), gt)
    return {k: m[k] for k in METRICS}


def baselines(dicts):
    from wsis.core.boxes import annotation_extent
    from wsis.pseudo.records import image_record, read_image
    from wsis.methods.wsps.grabcut import grabcut_box

    fill, grab = {}, {}
    for d in dicts:
        image = read_image(d)
        h, w = image.shape[:2]
        anns = [a for a in d["annotations"] if not a.get("iscrowd", 0)]
        mf = np.zeros((len(anns), h, w), dtype=bool)
        mg = np.zeros_like(mf)
        for i, a in enumerate(anns):
            x0, y0, x1, y1 = annotation_extent(a, h, w)
            mf[i, y0:y1, x0:x1] = True
            fg = grabcut_box(image, (x0, y0, x1, y1), iterations=5, init="rect")
            mg[i, y0:y1, x0:x1] = fg if fg is not None else False  # a failed GrabCut scores as an empty mask
        fill[d["image_id"]], grab[d["image_id"]] = image_record(d, anns, mf), image_record(d, anns, mg)
    return fill, grab


def calibrate(cfg, model, dicts, thresholds):
    """The binarisation threshold with the best mean IoU of every proxy mask on ``dicts`` (the salient training set)."""
    probs = predict(cfg, model, dicts)
    curve = {t: scores(proxy_records(dicts, probs, threshold=t), dicts)["mean_iou"] for t in thresholds}
    return {"on": CALIBRATION, "mean_iou": curve, "threshold": max(curve, key=curve.get)}


def generation_throughput(config, opts, weights, dicts, workers):
    from wsis.data.pseudo_store import make_provenance
    from wsis.data.weak import to_box_supervision
    from wsis.methods.boxcaseg.generator import BoxCasegProxyGenerator
    from wsis.pseudo import run_generator

    boxes = to_box_supervision(dicts)
    n_boxes = sum(not a.get("iscrowd", 0) for d in boxes for a in d["annotations"])
    out = {}
    for n in (1, workers):
        gen = BoxCasegProxyGenerator(config, opts, weights, threads=1)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run_generator(boxes, gen, os.path.join(tmp, "p.json"), make_provenance("boxcaseg", gen.params, source="b",
                          source_hash="0"), workers=n, progress=False)
            out[n] = n_boxes / (time.perf_counter() - t0)
    return {"boxes": n_boxes, "boxes_per_s": out, "speedup": out[workers] / out[1]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--iters", type=int, default=1000)
    p.add_argument("--crop", type=int, default=128, help="training and proxy crop side (paper: 288 / 320)")
    p.add_argument("--variants", default="weak,weak+salient,all")
    p.add_argument("--alphas", default="0,0.3,0.5,0.7,1")
    p.add_argument("--drops", default="0,0.75,0.85,0.9,0.95")
    p.add_argument("--thresholds", default="0.1,0.15,0.2,0.25,0.3,0.35,0.4,0.45,0.5")
    p.add_argument("--seed", type=int, default=0, help="seeds Python, NumPy and torch before each training")
    p.add_argument("--weights", help="evaluate <weights>/<variant>/model_final.pth instead of training")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--throughput-images", type=int, default=20)
    p.add_argument("--out", default="output/bench_boxcaseg")
    args = p.parse_args(argv)

    from detectron2.data import DatasetCatalog

    import wsis.modeling  # noqa: F401  (registers datasets and the meta-architecture)

    os.makedirs(args.out, exist_ok=True)
    gt = {name: DatasetCatalog.get(name) for name in DATASETS}
    results = {"schedule": {"iters": None if args.weights else args.iters, "crop": args.crop, "seed": args.seed},
               "baselines": {},
               "variants": {}}
    for name in DATASETS:
        fill, grab = baselines(gt[name])
        results["baselines"][name] = {"box-fill": scores(fill, gt[name]), "GrabCut": scores(grab, gt[name])}
        print(name, results["baselines"][name], flush=True)
    base_opts = ["WSIS.BOXCASEG.CROP_SIZE", args.crop, "WSIS.BOXCASEG.SALIENT_RESIZE", args.crop + args.crop // 9,
                 "WSIS.BOXCASEG.PROXY_CROP_SIZE", args.crop, "SOLVER.MAX_ITER", args.iters, "DATASETS.TEST", "()",
                 "DATALOADER.NUM_WORKERS", 1, "SOLVER.WARMUP_ITERS", min(100, args.iters // 10)]
    for variant in args.variants.split(","):
        opts = base_opts + ["MODEL.BOXCASEG.HEADS", variant, "OUTPUT_DIR", os.path.join(args.out, variant)]
        if args.weights:
            cfg, model, info = load(args.config, opts, os.path.join(args.weights, variant, "model_final.pth"))
        else:
            from detectron2.utils.env import seed_all_rng

            seed_all_rng(args.seed)
            cfg, model, info = train(args.config, opts)
        res = {"train": info, "proxy": {}}
        thresholds = sorted({float(x) for x in args.thresholds.split(",")} | {0.5})  # 0.5: the paper's
        res["calibration"] = calibrate(cfg, model, DatasetCatalog.get(CALIBRATION), thresholds)
        print(variant, "calibration", res["calibration"], flush=True)
        for name in DATASETS:
            probs = predict(cfg, model, gt[name])
            res.setdefault("threshold", {})[name] = {
                t: scores(proxy_records(gt[name], probs, threshold=t), gt[name]) for t in thresholds}
            res["proxy"][name] = res["threshold"][name][0.5]
            res["calibration"][name] = res["threshold"][name][res["calibration"]["threshold"]]
            if variant == "all":
                from wsis.evaluation.pseudo_eval import evaluate_pseudo_masks

                res.setdefault("drop", {})[name] = {}
                undropped = proxy_records(gt[name], probs, drop_threshold=0)
                for t in (float(x) for x in args.drops.split(",")):
                    r = with_drop_threshold(undropped, t)
                    n = sum(len(x["instances"]) for x in r.values())
                    kept = evaluate_pseudo_masks(r, gt[name])
                    res["drop"][name][t] = {"drop_rate": sum(not i["valid"] for x in r.values()
                                                             for i in x["instances"]) / max(n, 1),
                                            "kept_mean_iou": kept["mean_iou"], "kept_iou@0.75": kept["iou@0.75"]}
                res.setdefault("alpha", {})[name] = {}
                for a in (float(x) for x in args.alphas.split(",")):
                    model.heads.alpha = a
                    res["alpha"][name][a] = scores(proxy_records(gt[name], predict(cfg, model, gt[name])), gt[name])
                model.heads.alpha = cfg.MODEL.BOXCASEG.ALPHA
            print(variant, name, res["proxy"][name], flush=True)
        results["variants"][variant] = res
        if variant == "all" and args.workers > 1:
            weights = os.path.join(args.weights or args.out, variant, "model_final.pth")
            results["generation"] = generation_throughput(args.config, opts, weights,
                                                          gt["coco_tiny_val"][: args.throughput_images], args.workers)
            print("generation", results["generation"], flush=True)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
