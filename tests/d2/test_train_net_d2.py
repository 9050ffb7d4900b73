"""End to end: box-fill pseudo masks -> instant-test Mask R-CNN training on CPU -> AP^r + COCO AP; checkpoint reload."""
import json
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("detectron2")

from conftest import REPO, SHARED_DATA  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, "coco_tiny")), reason="no shared data")

CONFIG = os.path.join(REPO, "configs", "quick_schedules", "proxy_mask_rcnn_coco_tiny_instant_test.yaml")


def _run(args, cwd):
    env = dict(os.environ, WSIS_DATASETS=SHARED_DATA)
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout + proc.stderr


def _apr_from_predictions(pth, dataset_name):
    """AP^r of COCOEvaluator's saved predictions, computed by the pure accumulator (no detectron2 evaluator)."""
    import torch
    from detectron2.data import DatasetCatalog, MetadataCatalog

    import wsis.data.datasets  # noqa: F401
    from wsis.evaluation import InstanceAPAccumulator

    gt = {d["image_id"]: d for d in DatasetCatalog.get(dataset_name)}
    names = MetadataCatalog.get(dataset_name).thing_classes
    acc = InstanceAPAccumulator(len(names), class_names=names)
    for p in torch.load(pth, map_location="cpu", weights_only=False):
        d = gt[p["image_id"]]
        preds = [{"category_id": r["category_id"], "score": r["score"], "segmentation": r["segmentation"]}
                 for r in p.get("instances", [])]  # contiguous ids: the file is saved before they are mapped back
        gts = [{"category_id": a["category_id"], "segmentation": a["segmentation"], "iscrowd": a.get("iscrowd", 0)}
               for a in d["annotations"]]
        acc.add(preds, gts, image_size=(d["height"], d["width"]))
    return {k: float(v) for k, v in acc.summarize().items()}


def test_instant_train_and_eval(tmp_path):
    pseudo = tmp_path / "pseudo"
    _run([os.path.join(REPO, "tools", "make_pseudo_masks.py"), "--split", "train", "--method", "boxfill", "--out", str(pseudo),
          "--no-progress", "--num-vis", "1"], cwd=tmp_path)
    out = tmp_path / "train"
    opts = ["WSIS.DATA.PSEUDO_MASKS", f"('{pseudo / 'pseudo_masks.json'}',)",
            "OUTPUT_DIR", str(out), "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "DATALOADER.NUM_WORKERS", "2"]
    train_net = [os.path.join(REPO, "tools", "train_net.py"), "--config-file", CONFIG]
    log = _run([*train_net, *opts, "SOLVER.MAX_ITER", "4"], cwd=tmp_path)
    # every non-crowd training instance got its box-fill pseudo mask
    data = json.load(open(os.path.join(SHARED_DATA, "coco_tiny", "annotations", "instances_train2017.json")))
    expected = sum(not a.get("iscrowd", 0) for a in data["annotations"])
    m = re.search(r"coco_tiny_train_box: .*pseudo_masks.json gives (\d+)/(\d+) instances a valid mask", log)
    assert m and int(m.group(1)) == int(m.group(2)) == expected, log[-3000:]
    assert "copypaste: Task: segm_APr" in log and "copypaste: Task: segm" in log
    apr = json.load(open(out / "inference" / "segm_APr.json"))
    assert {"AP^r@0.25", "AP^r@0.5", "AP^r@0.7", "AP^r@0.75", "AP^r_vol"} <= set(apr)
    # the evaluator's figures are the pure accumulator's on the same predictions (COCOEvaluator saved them)
    assert apr == pytest.approx(_apr_from_predictions(out / "inference" / "instances_predictions.pth",
                                                      "coco_tiny_val"))
    assert apr["AP^r@0.25"] >= apr["AP^r@0.5"] >= apr["AP^r@0.75"]  # a stricter IoU never raises AP
    assert os.path.isfile(out / "model_final.pth")

    # the checkpoint says which weak labels made it: the box-fill store, by provenance and bytes
    from wsis.checkpoint import read_description
    from wsis.data.pseudo_store import load_pseudo_masks, source_hash_of_file

    store = str(pseudo / "pseudo_masks.json")
    (weak,) = read_description(out / "model_final.pth")["weak_labels"]
    assert weak["path"] == store and weak["sha256"] == source_hash_of_file(store)
    assert weak["provenance"] == load_pseudo_masks(store)[0] and weak["provenance"]["method"] == "boxfill"
    described = _run([os.path.join(REPO, "tools", "describe_checkpoint.py"), str(out / "model_final.pth")], tmp_path)
    assert f"pseudo_masks: {store}" in described and "method boxfill" in described

    # the checkpoint written by training loads back through DetectionCheckpointer (torch.load weights_only)
    log = _run([*train_net, "--eval-only", *opts, "MODEL.WEIGHTS", str(out / "model_final.pth")], cwd=tmp_path)
    assert "copypaste: Task: segm_APr" in log
    assert json.load(open(out / "inference" / "segm_APr.json")) == apr
