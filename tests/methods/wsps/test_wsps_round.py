"""WSPS §3.4 iterative round: probabilities from predictions, the outside-box clamp, per-box instances, the CLI."""
import json
import os

import numpy as np
import pytest
import torch

from wsis.data.coco_weak import load_coco_instances
from wsis.data.pseudo_store import decode_mask, encode_mask, load_pseudo_masks
from wsis.core.masks import to_bool_mask
from wsis.methods.wsps.fusion import IGNORE
from wsis.methods.wsps.refine_round import WSPSRoundGenerator, load_predictions, refine_round
from wsis.methods.wsps.refine_round import instance_probabilities, select_semantic_channels

from conftest import load_tool


def rect(h, w, x0, y0, x1, y1):
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def test_instance_probabilities():
    h, w = 4, 6
    preds = [(2, 0.9, rect(h, w, 0, 0, 3, 4)), (2, 0.6, encode_mask(rect(h, w, 2, 0, 6, 4))),
             (7, 0.8, rect(h, w, 5, 0, 6, 1))]
    p = instance_probabilities((h, w), preds, [2])
    assert p.shape == (3, h, w) and np.allclose(p.sum(0), 1)
    assert p[1, 0, 2] > p[1, 0, 4] > p[0, 0, 4], "score-weighted, the max over instances of a class"
    assert p[2, 0, 5] > p[1, 0, 5], "a class without a box goes to the 'other' channel"
    with pytest.raises(ValueError, match="predicted mask"):
        instance_probabilities((h, w), [(2, 1.0, rect(3, 3, 0, 0, 1, 1))], [2])


def test_outside_box_clamp_instances_and_overlaps():
    h, w = 10, 20
    image = np.zeros((h, w, 3), np.uint8)
    boxes, classes = [(0, 0, 8, 10), (6, 0, 12, 10)], [1, 1]
    # class 1 is predicted over x < 15: x in [12, 15) is outside both its boxes; class 4 (no box) at x >= 18
    probs = np.zeros((3, h, w), np.float32)
    probs[1, :, :15] = 0.9
    probs[2, :, 18:] = 0.9
    probs[0] = 1 - probs[1:].sum(0)
    probs = np.clip(probs, 1e-3, None)
    sem, masks, inst_ign = refine_round(image, boxes, classes, probs, [1], params=None)
    assert (sem[:, :12] == 2).all() and (sem[:, 12:15] == IGNORE).all() and (sem[:, 18:] == IGNORE).all()
    assert (sem[:, 15:18] == 0).all()
    assert masks[0, :, :6].all() and masks[1, :, 8:12].all() and not masks[:, :, 6:8].any()
    assert inst_ign[0, :, 6:8].all() and inst_ign[1, :, 6:8].all(), "same-class overlap → ignore"
    sem_bg, _, _ = refine_round(image, boxes, classes, probs, [1], params=None, outside="background")
    assert (sem_bg[:, 12:15] == 0).all() and (sem_bg[:, 18:] == 0).all(), "VOC: the only stuff class"
    # a crowd box of the class: its pixels are not stray, but ignored, never an instance
    sem_c, masks_c, _ = refine_round(image, boxes, classes, probs, [1], crowd_boxes=[(12, 0, 16, 10)],
                                     crowd_classes=[1], params=None)
    assert (sem_c[:, 12:16] == IGNORE).all() and not masks_c[:, :, 12:].any()
    with pytest.raises(ValueError, match="outside"):
        refine_round(image, boxes, classes, probs, [1], params=None, outside="drop")


def test_instances_keep_the_shape_of_their_matched_prediction():
    """Two cats whose boxes overlap: round 0 ignores the overlap for both; the model's instances split it, and the
    round keeps that split instead of ignoring it again (§3.4: the network's output is the new ground truth)."""
    h, w = 10, 20
    image = np.zeros((h, w, 3), np.uint8)
    boxes, classes = [(0, 0, 10, 10), (6, 0, 16, 10)], [1, 1]
    left, right = rect(h, w, 0, 0, 8, 10), rect(h, w, 8, 0, 16, 10)  # the network puts the border at x = 8
    preds = [(1, 0.9, left), (1, 0.8, encode_mask(right)), (1, 0.7, rect(h, w, 17, 0, 19, 2))]
    gen = WSPSRoundGenerator(predictions={5: preds}, crf=False)
    probs = instance_probabilities((h, w), [(c, s, to_bool_mask(m) if isinstance(m, dict) else m)
                                            for c, s, m in preds], [1])
    decoded = [(c, s, to_bool_mask(m) if isinstance(m, dict) else m) for c, s, m in preds]
    sem, masks, ign = refine_round(image, boxes, classes, probs, [1], params=None, predictions=decoded)
    assert np.array_equal(masks[0], left) and np.array_equal(masks[1], right)
    assert not ign.any(), "the overlap x in [6, 10) is attributed, not ignored"
    # the same without the predictions' shapes (semantic input): the overlap is ignored for both, as in round 0
    _, masks_b, ign_b = refine_round(image, boxes, classes, probs, [1], params=None)
    assert ign_b[0, :, 6:10].all() and ign_b[1, :, 6:10].all() and not masks_b[:, :, 6:10].any()
    # overlapping predictions: the higher score takes the pixel
    both = [(1, 0.6, rect(h, w, 0, 0, 10, 10)), (1, 0.9, rect(h, w, 6, 0, 16, 10))]
    _, masks_o, ign_o = refine_round(image, boxes, classes, probs, [1], params=None, predictions=both)
    assert masks_o[1, :, 6:16].all() and masks_o[0, :, :6].all() and not masks_o[0, :, 6:].any() and not ign_o.any()
    assert gen.params["match_iou"] == 0.5


def test_unmatched_boxes_fall_back_to_their_class_pixels(tmp_path):
    h, w = 10, 30
    image = np.zeros((h, w, 3), np.uint8)
    boxes, classes = [(0, 0, 10, 10), (12, 0, 30, 10), (20, 0, 30, 10)], [1, 1, 2]
    probs = np.full((4, h, w), 0.01, np.float32)
    probs[1, :, :20] = 0.97  # class 1 left of x = 20
    probs[2, :, 20:] = 0.97  # class 2 on the right
    probs[0] = 1 - probs[1:].sum(0)
    preds = [(1, 0.9, rect(h, w, 0, 0, 9, 10)),     # matches box 0 (IoU 0.9)
             (2, 0.9, rect(h, w, 0, 0, 3, 3)),      # class 2 but far from box 2: no match
             (1, 0.8, rect(h, w, 25, 0, 26, 10))]   # class 1 but IoU with box 1 is 1/18: no match
    sem, masks, ign = refine_round(image, boxes, classes, probs, [1, 2], params=None, predictions=preds)
    assert np.array_equal(masks[0], rect(h, w, 0, 0, 9, 10)), "matched: the prediction's shape"
    assert np.array_equal(masks[1], rect(h, w, 12, 0, 20, 10)), "unmatched: its box's class-1 pixels"
    assert np.array_equal(masks[2], rect(h, w, 20, 0, 30, 10)) and not ign.any()



def test_crf_round_cleans_a_noisy_prediction():
    h, w = 40, 60
    rng = np.random.RandomState(0)
    image = np.full((h, w, 3), 30, np.uint8)
    image[10:30, 15:45] = 220  # a bright object
    truth = rect(h, w, 15, 10, 45, 30)
    noisy = np.clip(np.where(truth, 0.7, 0.3) + rng.uniform(-0.35, 0.35, (h, w)), 0.01, 0.99).astype(np.float32)
    probs = np.stack([1 - noisy, noisy, np.full((h, w), 1e-3, np.float32)])
    probs /= probs.sum(0)
    sem0, _, _ = refine_round(image, [(12, 8, 48, 32)], [0], probs, [0], params=None)
    sem1, masks, _ = refine_round(image, [(12, 8, 48, 32)], [0], probs, [0])
    err0, err1 = np.mean((sem0 == 1) != truth), np.mean((sem1 == 1) != truth)
    assert err1 < err0 / 4 and (masks[0] == truth).mean() > 0.99


def test_select_semantic_channels():
    p = np.random.RandomState(0).rand(5, 3, 4).astype(np.float32)  # background + classes 0..3
    p /= p.sum(0)
    s = select_semantic_channels(p, [2])
    assert s.shape == (3, 3, 4) and np.allclose(s[2], (p[1] + p[2] + p[4]) / 1, atol=1e-3)


def _detectron2_style(tmp_path, gt_dicts, id_to_dataset):
    """instances_predictions.pth and a COCO results json made from the GT masks (a perfect model)."""
    per_image = []
    for d in gt_dicts:
        inst = []
        for a in d["annotations"]:
            if "segmentation" in a and not a["iscrowd"]:
                m = to_bool_mask(a["segmentation"], d["height"], d["width"])
                inst.append({"image_id": d["image_id"], "category_id": id_to_dataset[a["category_id"]],
                             "bbox": a["bbox"], "score": 0.95, "segmentation": encode_mask(m)})
        per_image.append({"image_id": d["image_id"], "instances": inst})
    pth = tmp_path / "instances_predictions.pth"
    torch.save(per_image, pth)
    js = tmp_path / "results.json"
    js.write_text(json.dumps([r for p in per_image for r in p["instances"]]))
    return str(pth), str(js)


def test_load_predictions_formats(tiny_coco, tmp_path):
    gt, meta = load_coco_instances(*tiny_coco)
    id_map = meta["thing_dataset_id_to_contiguous_id"]
    pth, js = _detectron2_style(tmp_path, gt, {v: k for k, v in id_map.items()})
    a, b = load_predictions(pth, id_map), load_predictions(js, id_map)
    assert a == b and sorted(a) == [7] and [c for c, _, _ in a[7]] == [0, 1]
    with pytest.raises(ValueError, match="unknown category id 3"):
        load_predictions(js, {1: 0})
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="list of results"):
        load_predictions(str(bad))


def test_round_cli_from_predictions(tiny_coco, tmp_path):
    gt, meta = load_coco_instances(*tiny_coco)
    id_map = meta["thing_dataset_id_to_contiguous_id"]
    pth, js = _detectron2_style(tmp_path, gt, {v: k for k, v in id_map.items()})
    outs = {}
    for name, pred in (("pth", pth), ("json", js)):
        out = tmp_path / name
        m = load_tool("make_pseudo_masks").main(["--method", "wsps_round", "--json", tiny_coco[0], "--images",
                                                 tiny_coco[1], "--out", str(out), "--workers", "1", "--no-progress",
                                                 "--save-semantic", "WSIS.PSEUDO.WSPS_ROUND.PREDICTIONS", pred,
                                                 "WSIS.PSEUDO.WSPS_ROUND.CRF.ITERATIONS", "3"])
        outs[name] = m
        assert (out / "pseudo_masks.json").exists() and sorted(os.listdir(out / "semantic")) == ["7.png", "9.png"]
    assert outs["pth"]["kept/mean_iou"] == outs["json"]["kept/mean_iou"] > 0.7
    prov, records = load_pseudo_masks(str(tmp_path / "pth" / "pseudo_masks.json"))
    assert prov["method"] == "wsps_round" and prov["params"]["crf"]["iterations"] == 3 and "predictions_hash" in prov
    inst = {i["annotation_id"]: i for i in records[9]["instances"]}
    assert not inst[4]["valid"], "image 9 has no prediction: its box stays, without a mask"
    # the deprecated wsis 0.1 command runs the same job: the same store, byte for byte
    load_tool("wsps_refine_round").main(["--json", tiny_coco[0], "--images", tiny_coco[1], "--predictions", pth,
                                         "--out", str(tmp_path / "old"), "--workers", "1", "--no-progress",
                                         "--crf-param", "iterations=3"])
    assert (tmp_path / "old" / "pseudo_masks.json").read_bytes() == (tmp_path / "pth" / "pseudo_masks.json").read_bytes()
    with pytest.raises(SystemExit, match="exactly one"):
        load_tool("make_pseudo_masks").main(["--method", "wsps_round", "--json", tiny_coco[0], "--images",
                                             tiny_coco[1], "--out", str(tmp_path / "none"), "--no-progress"])


def test_round_from_semantic_probabilities(tiny_coco, tmp_path):
    gt, _ = load_coco_instances(*tiny_coco)
    sem_dir = tmp_path / "sem"
    sem_dir.mkdir()
    for d in gt:
        probs = np.full((3, d["height"], d["width"]), 0.05, np.float32)
        probs[0] = 0.9
        probs[1, 10:20, 10:30] = 0.9  # class 0 where annotation 1 is
        probs[0, 10:20, 10:30] = 0.05
        np.savez(sem_dir / f"{d['image_id']}.npz", probs=probs)
    gen = WSPSRoundGenerator(semantic_dir=str(sem_dir), crf=False)
    dicts, _ = load_coco_instances(*tiny_coco, supervision="box")
    rec = gen(dicts[0])
    m = decode_mask(rec["instances"][0]["segmentation"])
    assert m[10:20, 10:30].all() and m.sum() == 200
    os.remove(sem_dir / "9.npz")
    with pytest.raises(FileNotFoundError):
        gen(dicts[1])
    with pytest.raises(ValueError, match="exactly one"):
        WSPSRoundGenerator()
