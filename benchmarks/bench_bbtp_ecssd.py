#!/usr/bin/env python
"""
Learning masks from boxes on real data (needs detectron2): ECSSD, one class, box = tight box of the salient mask,
images 1-800 for training and 801-1000 held out. Three Mask R-CNNs with the same schedule:

  gt_masks   ProxyMaskRCNNConvUpsampleHead on the GT masks (the fully-supervised reference)
  box_fill   the same head on box-fill pseudo masks (written to and read from the pseudo-mask store)
  bbtp_mil   BoxSupervisedMaskRCNNConvUpsampleHead (BBTP's MIL loss) on the boxes, evaluated without CRF and with
             each inference CRF: "bbtp" (BBTP's official kernels, unnormalised as its MATLAB code runs them) and
             "deeplab" (DeepLab's kernels); the setting with the best mean IoU on ECSSD *training* boxes (images
             1..--crf-choice-images) is marked "chosen": no held-out mask chooses it

Prints COCO mask AP and AP^r@0.5 of the detections, the mean IoU of the mask predicted for each held-out GT box
(mask quality without detection errors), and each method's IoU ratio to gt_masks. Trains from scratch (no pretrained
weights can be downloaded here): the schedule is short, so compare the rows with each other, not with the papers.

    WSIS_DATASETS=../shared/data python benchmarks/bench_bbtp_ecssd.py --iters 150 --batch 2 --size 192
    WSIS_DATASETS=../shared/data python benchmarks/bench_bbtp_ecssd.py --methods bbtp_mil ...   # the CRF question only
"""
import argparse
import json
import logging
import os
import tempfile
import time

import numpy as np
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, build_detection_test_loader
from detectron2.evaluation import COCOEvaluator, DatasetEvaluators, inference_on_dataset
from detectron2.structures import Boxes, Instances
from detectron2.utils.logger import setup_logger

from wsis.config import add_wsis_config
from wsis.data.mapper import WeakDatasetMapper
from wsis.data.pseudo_store import make_provenance
import wsis.modeling  # noqa: F401  (registers the heads)
from wsis.engine import WSISTrainer
from wsis.evaluation.evaluators import InstanceAPrEvaluator
from wsis.core.masks import to_bool_mask
from wsis.core.crf import BBTP_CRF, DenseCRFParams
from wsis.pseudo import BoxFillGenerator, run_generator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRFS = {"none": None, "bbtp": BBTP_CRF, "deeplab": DenseCRFParams()}


def make_cfg(args, out_dir, head, train_set, pseudo=()):
    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(os.path.join(REPO, "configs", "quick_schedules", "proxy_mask_rcnn_coco_tiny_instant_test.yaml"))
    cfg.MODEL.META_ARCHITECTURE = "GeneralizedRCNNWithMaskCRF"
    cfg.MODEL.DEVICE = args.device
    cfg.MODEL.RESNETS.DEPTH = args.depth
    if args.depth in (18, 34):
        cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 1
    # a light Mask R-CNN so that three models train on two CPU cores in one session (same for every row):
    # one large object per image needs few proposals; narrower FPN, box head and mask head
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 32
    cfg.MODEL.FPN.OUT_CHANNELS = 128
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 256
    cfg.MODEL.ROI_MASK_HEAD.NUM_CONV = 2
    cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = 128
    cfg.MODEL.ROI_MASK_HEAD.NAME = head
    cfg.DATASETS.TRAIN = (train_set,)
    cfg.DATASETS.TEST = ()  # evaluated once, below (DefaultTrainer would also evaluate after training)
    cfg.WSIS.DATA.PSEUDO_MASKS = tuple(pseudo)
    cfg.INPUT.MIN_SIZE_TRAIN = (args.size,)
    cfg.INPUT.MAX_SIZE_TRAIN = int(args.size * 1.5)
    cfg.INPUT.MIN_SIZE_TEST = args.size
    cfg.INPUT.MAX_SIZE_TEST = int(args.size * 1.5)
    cfg.SOLVER.IMS_PER_BATCH = args.batch
    cfg.SOLVER.BASE_LR = args.lr
    cfg.SOLVER.WARMUP_ITERS = min(100, args.iters // 10)
    cfg.SOLVER.MAX_ITER = args.iters
    cfg.SOLVER.STEPS = (int(args.iters * 0.8),)
    cfg.TEST.EVAL_PERIOD = 0
    cfg.TEST.DETECTIONS_PER_IMAGE = 10
    cfg.DATALOADER.NUM_WORKERS = args.workers
    cfg.SEED = args.seed
    cfg.OUTPUT_DIR = out_dir
    return cfg


def box_conditioned_iou(cfg, model, val):
    """Mean IoU of the mask predicted for each held-out image's GT box with its GT mask (mask quality without
    detection errors)."""
    mapper = WeakDatasetMapper(cfg, is_train=False)
    ious = []
    with torch.no_grad():
        for d in val:
            inp = mapper(d)
            x0, y0, w, h = d["annotations"][0]["bbox"]
            sy, sx = inp["image"].shape[1] / d["height"], inp["image"].shape[2] / d["width"]
            det = Instances(tuple(inp["image"].shape[1:]))
            det.pred_boxes = Boxes(torch.tensor([[x0 * sx, y0 * sy, (x0 + w) * sx, (y0 + h) * sy]]))
            det.pred_classes = torch.zeros(1, dtype=torch.long)
            det.scores = torch.ones(1)
            out = model.inference([inp], detected_instances=[det.to(model.device)])[0]["instances"].to("cpu")
            g = to_bool_mask(d["annotations"][0]["segmentation"], d["height"], d["width"])
            p = out.pred_masks[0].numpy().astype(bool)
            ious.append(float((p & g).sum() / max((p | g).sum(), 1)))
    return float(np.mean(ious))


def evaluate(cfg, model, crf):
    model.crf_enabled, model.crf_params = crf is not None, crf or model.crf_params
    model.eval()
    val = DatasetCatalog.get("ecssd_val")
    evaluator = DatasetEvaluators([
        COCOEvaluator("ecssd_val", tasks=("segm",), output_dir=cfg.OUTPUT_DIR, allow_cached_coco=False),
        InstanceAPrEvaluator("ecssd_val"),
    ])
    loader = build_detection_test_loader(cfg, "ecssd_val", mapper=WeakDatasetMapper(cfg, is_train=False))
    res = inference_on_dataset(model, loader, evaluator)
    return {"mask_AP": res["segm"]["AP"], "AP^r@0.5": res["segm_APr"]["AP^r@0.5"],
            "mean_IoU": box_conditioned_iou(cfg, model, val)}


def train(cfg):
    trainer = WSISTrainer(cfg)
    trainer.resume_or_load(resume=False)
    t0 = time.perf_counter()
    trainer.train()
    return trainer.model, time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iters", type=int, default=400)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--depth", type=int, default=18)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the table as json here")
    p.add_argument("--methods", default="gt_masks,box_fill,bbtp_mil")
    p.add_argument("--crf-choice-images", type=int, default=100,
                   help="ECSSD training images 1..N on which the CRF setting is chosen (box IoU)")
    args = p.parse_args()
    setup_logger(name="wsis")
    setup_logger(name="detectron2").setLevel(logging.WARNING)
    import wsis.data.datasets  # noqa: F401  (registers ecssd_*)

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        box_dicts = DatasetCatalog.get("ecssd_train_box")
        store = os.path.join(tmp, "ecssd_train_boxfill.json")
        run_generator(box_dicts, BoxFillGenerator(), store,
                      make_provenance("boxfill", {"overlap": "keep"}, source="ecssd_train_box", source_hash="-"),
                      progress=False)
        runs = [
            ("gt_masks", "ProxyMaskRCNNConvUpsampleHead", "ecssd_train", ()),
            ("box_fill", "ProxyMaskRCNNConvUpsampleHead", "ecssd_train_box", (store,)),
            ("bbtp_mil", "BoxSupervisedMaskRCNNConvUpsampleHead", "ecssd_train_box", ()),
        ]
        for name, head, train_set, pseudo in [r for r in runs if r[0] in args.methods.split(",")]:
            torch.manual_seed(args.seed)
            cfg = make_cfg(args, os.path.join(tmp, name), head, train_set, pseudo)
            model, seconds = train(cfg)
            if name != "bbtp_mil":
                rows[name] = dict(evaluate(cfg, model, None), train_s=seconds)
                print(name, rows[name], flush=True)
                continue
            train_val = DatasetCatalog.get("ecssd_train")[: args.crf_choice_images]
            choice = {}
            for crf_name, crf in CRFS.items():
                model.crf_enabled, model.crf_params = crf is not None, crf or model.crf_params
                model.eval()
                t0 = time.perf_counter()
                choice[crf_name] = box_conditioned_iou(cfg, model, train_val)
                choice[crf_name + "_s_per_image"] = (time.perf_counter() - t0) / len(train_val)
            chosen = max(CRFS, key=lambda k: choice[k])
            print("CRF on training boxes (mean IoU, s/image):", choice, "chosen:", chosen, flush=True)
            for crf_name, crf in CRFS.items():
                row = name if crf is None else f"{name}+crf {crf_name}"
                rows[row] = dict(evaluate(cfg, model, crf), train_s=seconds, train_box_iou=choice[crf_name],
                                 chosen=crf_name == chosen)
                print(row, rows[row], flush=True)

    ref = rows.get("gt_masks", {"mean_IoU": float("nan")})
    print(f"\nECSSD held-out 801-1000, R-{args.depth}-FPN from scratch, {args.iters} iters x {args.batch} images "
          f"at {args.size}px, {args.device}")
    print(f"{'method':34s} {'mask AP':>8s} {'AP^r@0.5':>9s} {'mean IoU':>9s} {'IoU / full':>11s} {'train s':>8s}")
    for name, r in rows.items():
        ratio = r["mean_IoU"] / ref["mean_IoU"] if ref["mean_IoU"] > 0 else float("nan")
        name = name + (" (chosen on train)" if r.get("chosen") else "")
        print(f"{name:34s} {r['mask_AP']:8.2f} {r['AP^r@0.5']:9.2f} {r['mean_IoU']:9.3f} {ratio:11.2f} "
              f"{r['train_s']:8.0f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
