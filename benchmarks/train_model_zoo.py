#!/usr/bin/env python
"""
Train the CPU instant-test models of MODEL_ZOO.md, lay them out as a model-zoo folder and evaluate each one again
through its ``wsis://`` name (one run; needs detectron2 and the shared data).

    python benchmarks/train_model_zoo.py [--out output/model_zoo] [--workers 2]
    WSIS_MODEL_ZOO=output/model_zoo python tools/train_net.py --eval-only \
        --config-file projects/BBTP/configs/bbtp_coco_tiny_instant_test.yaml \
        MODEL.WEIGHTS wsis://BBTP/bbtp_coco_tiny_instant_test/model_final.pth

Stages, each a README command (resumable: a model whose ``model_final.pth`` exists is not trained again):
1. WSPS pseudo masks of coco_tiny train (``tools/make_pseudo_masks.py --split train``).
2. Proxy Mask R-CNN on them, the semi-supervised variant (half the images with real masks), BBTP's MIL head on the
   boxes alone; BoxCaseg's joint network, its proxy masks of coco_tiny train, and Proxy Mask R-CNN on those.
3. ``--eval-only`` of every model with ``MODEL.WEIGHTS wsis://<name>/model_final.pth`` and ``WSIS_MODEL_ZOO=<out>``:
   coco_tiny val AP^r (wsis's evaluator) and COCO mask AP (detectron2's), every detection kept (score threshold 0:
   these 40-iteration models score none above Detectron2's 0.05), plus the weak labels the checkpoint
   names (``tools/describe_checkpoint.py``). Prints the MODEL_ZOO.md table and writes ``<out>/model_zoo.json``.
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_cam import copypaste  # noqa: E402
from wsis.checkpoint import read_description  # noqa: E402

WSPS = "pseudo/coco_tiny_train_wsps/pseudo_masks.json"
BOXCASEG_STAGE1 = "BoxCaseg/boxcaseg_coco_tiny_instant_test.yaml"
BOXCASEG_MASKS = "pseudo/coco_tiny_train_boxcaseg/pseudo_masks.json"
#: (config name, pseudo-mask file under --out or None, what the weak labels are)
MODELS = [
    ("quick_schedules/proxy_mask_rcnn_coco_tiny_instant_test.yaml", WSPS, "boxes + WSPS pseudo masks"),
    ("quick_schedules/proxy_mask_rcnn_coco_tiny_semi50_instant_test.yaml", WSPS,
     "boxes; real masks on 50 % of the images, WSPS pseudo masks on the rest"),
    ("BBTP/bbtp_coco_tiny_instant_test.yaml", None, "boxes (MIL head)"),
    ("BoxCaseg/proxy_mask_rcnn_coco_tiny_instant_test.yaml", BOXCASEG_MASKS,
     "boxes + BoxCaseg proxy masks (joint net on boxes + ECSSD 1-800 salient masks)"),
]


def _run(cmd, log, env=None):
    t = time.time()
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, *cmd], cwd=REPO, stdout=f, stderr=subprocess.STDOUT,
                              env=dict(os.environ, **(env or {})))
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}; see {log}")
    return time.time() - t


def _config(name):
    from wsis.model_zoo import get_config_file

    return get_config_file(name)


def _train(name, out, opts, logs):
    folder = os.path.join(out, name[:-len(".yaml")])
    if os.path.isfile(os.path.join(folder, "model_final.pth")):
        return None
    print(f"training {name} ...", flush=True)
    seconds = _run(["tools/train_net.py", "--config-file", _config(name), "OUTPUT_DIR", folder, *opts],
                   os.path.join(logs, name.replace("/", "__") + ".train.log"))
    with open(os.path.join(folder, "train_seconds.txt"), "w") as f:
        f.write(f"{seconds:.0f}\n")
    return seconds


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(REPO, "output", "model_zoo"))
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    out = os.path.abspath(args.out)
    logs = os.path.join(out, "logs")
    os.makedirs(logs, exist_ok=True)
    wsps_dir = os.path.join(out, "pseudo", "coco_tiny_train_wsps")
    if not os.path.isfile(os.path.join(out, WSPS)):
        print("WSPS pseudo masks of coco_tiny train ...", flush=True)
        _run(["tools/make_pseudo_masks.py", "--split", "train", "--out", wsps_dir, "--workers", str(args.workers),
              "--no-progress"], os.path.join(logs, "wsps_pseudo_masks.log"))
    stage1 = os.path.join(out, BOXCASEG_STAGE1[:-len(".yaml")])
    _train(BOXCASEG_STAGE1, out, [], logs)
    if not os.path.isfile(os.path.join(out, BOXCASEG_MASKS)):
        print("BoxCaseg proxy masks of coco_tiny train ...", flush=True)
        _run(["tools/make_pseudo_masks.py", "--method", "boxcaseg", "--split", "train", "--workers", str(args.workers),
              "--config-file", _config(BOXCASEG_STAGE1), "--out", os.path.dirname(os.path.join(out, BOXCASEG_MASKS)),
              "--no-progress", "MODEL.WEIGHTS", os.path.join(stage1, "model_final.pth")],
             os.path.join(logs, "boxcaseg_proxy_masks.log"))
    rows = []
    for name, masks, weak in MODELS:
        opts = ["WSIS.DATA.PSEUDO_MASKS", f"('{os.path.join(out, masks)}',)" if masks else "()"]
        _train(name, out, opts, logs)
        folder = os.path.join(out, name[:-len(".yaml")])
        url = f"wsis://{name[:-len('.yaml')]}/model_final.pth"
        log = os.path.join(logs, name.replace("/", "__") + ".eval.log")
        # every detection is kept (score threshold 0): 40 iterations from scratch score none above 0.05
        _run(["tools/train_net.py", "--eval-only", "--config-file", _config(name), "MODEL.WEIGHTS", url,
              "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "OUTPUT_DIR", os.path.join(folder, "eval_from_wsis_url")],
             log, env={"WSIS_MODEL_ZOO": out})
        apr, segm = copypaste(log, "segm_APr"), copypaste(log, "segm")
        desc = read_description(os.path.join(folder, "model_final.pth"))
        stores = [(e["path"], e["provenance"]["method"]) for e in desc["weak_labels"] if e["kind"] == "pseudo_masks"]
        with open(os.path.join(folder, "train_seconds.txt")) as f:
            seconds = float(f.read())
        rows.append({"name": name, "weak_labels": weak, "described_stores": stores, "train_seconds": seconds,
                     "AP^r@0.5": apr.get("AP^r@0.5"), "AP^r_vol": apr.get("AP^r_vol"), "mask AP": segm.get("AP"),
                     "mask AP50": segm.get("AP50"), "AP^r@0.25": apr.get("AP^r@0.25")})
    with open(os.path.join(out, "model_zoo.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print("| name | weak labels | train time (2-core CPU) | AP^r@0.25 | AP^r@0.5 | AP^r_vol | mask AP | mask AP50 | "
          "stores named by the checkpoint |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        stores = ", ".join(f"{m} ({os.path.relpath(p, out)})" for p, m in r["described_stores"]) or "none"
        print(f"| {r['name']} | {r['weak_labels']} | {r['train_seconds']:.0f} s | {r['AP^r@0.25']} | {r['AP^r@0.5']} "
              f"| {r['AP^r_vol']} | {r['mask AP']} | {r['mask AP50']} | {stores} |")


if __name__ == "__main__":
    main()
