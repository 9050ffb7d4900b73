"""Detectron2 glue of the WSPS round: tools/infer_train_set.py → instances_predictions.pth → the next round."""
import os

import pytest

pytest.importorskip("detectron2")

from wsis.data.coco_weak import load_coco_instances  # noqa: E402
from wsis.data.pseudo_store import load_pseudo_masks  # noqa: E402
from wsis.methods.wsps.refine_round import load_predictions  # noqa: E402

from conftest import REPO, load_tool  # noqa: E402

CONFIG = os.path.join(REPO, "configs", "quick_schedules", "proxy_mask_rcnn_coco_tiny_instant_test.yaml")




def test_infer_train_set_then_round(tiny_coco, tmp_path):
    from wsis.data.datasets import register_coco_weak

    name = "wsps_test_tiny_coco_box"
    register_coco_weak(name, tiny_coco[0], tiny_coco[1], supervision="box")
    out = tmp_path / "instances_predictions.pth"
    preds = load_tool("infer_train_set").main(
        ["--config-file", CONFIG, "--dataset", name, "--out", str(out), "MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu",
         "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "MODEL.ROI_HEADS.NUM_CLASSES", "2"])
    assert out.exists() and sorted(p["image_id"] for p in preds) == [7, 9]
    _, meta = load_coco_instances(*tiny_coco)
    loaded = load_predictions(str(out), meta["thing_dataset_id_to_contiguous_id"])
    assert sum(len(p["instances"]) for p in preds) > 0, "SCORE_THRESH_TEST 0 keeps every detection"
    assert set(loaded) <= {7, 9} and sum(map(len, loaded.values())) == sum(len(p["instances"]) for p in preds)
    assert all(0 <= c < 2 and "counts" in rle for v in loaded.values() for c, _, rle in v)
    load_tool("make_pseudo_masks").main(["--method", "wsps_round", "--json", tiny_coco[0], "--images", tiny_coco[1],
                                         "--out", str(tmp_path / "round1"), "--workers", "1", "--no-progress",
                                         "WSIS.PSEUDO.WSPS_ROUND.PREDICTIONS", str(out)])
    _, records = load_pseudo_masks(str(tmp_path / "round1" / "pseudo_masks.json"))
    assert sorted(records) == [7, 9]
