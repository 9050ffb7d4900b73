"""WSPS's panoptic network with a real detectron2: the label mapper, the PSP head, both training stages (the
matched CRF loss reaching the CRF's weights), inference (non-overlapping panoptic output), PQ / AP^r / mIoU
evaluation and the next round's labels, on a synthetic sky / grass / balls set."""
import os

import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.config import get_cfg  # noqa: E402
from detectron2.data import DatasetCatalog  # noqa: E402

from wsis.config import add_wsis_config  # noqa: E402

from conftest import REPO  # noqa: E402
from panoptic_helpers import SIZE, register_panoptic_set  # noqa: E402

CFG = os.path.join(REPO, "projects", "WSPS", "configs", "panoptic_R18_FPN_scratch_coco_panoptic_halves_crf.yaml")
PREFIX = "wsis_test_panoptic"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("panoptic_set")
    return register_panoptic_set(str(root), PREFIX)


def _cfg(tmp_path, labels, opts=()):
    import wsis.modeling  # noqa: F401

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(CFG)
    cfg.merge_from_list([
        "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "3", "MODEL.ROI_HEADS.NUM_CLASSES", "1", "MODEL.PSP_HEAD.DROPOUT", "0.0",
        "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.PSP_HEAD.CHANNELS", "32", "MODEL.ROI_BOX_HEAD.FC_DIM", "64",
        "DATASETS.TRAIN", f"('{PREFIX}_box',)", "DATASETS.TEST", f"('{PREFIX}_panoptic',)",
        "WSIS.DATA.PANOPTIC_LABELS", f"('{labels}',)", "INPUT.MIN_SIZE_TRAIN", f"({SIZE},)",
        "INPUT.MAX_SIZE_TRAIN", str(SIZE), "INPUT.MIN_SIZE_TEST", str(SIZE), "INPUT.MAX_SIZE_TEST", str(SIZE),
        "INPUT.RANDOM_FLIP", "none", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.MAX_ITER", "3", "SOLVER.WARMUP_ITERS", "0",
        "SOLVER.BASE_LR", "0.01", "SOLVER.STEPS", "()", "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", str(tmp_path),
        "SEED", "0", *opts])
    return cfg


def test_mapper_labels_and_boxes(data, tmp_path):
    from wsis.methods.panoptic.loaders import get_panoptic_train_dicts
    from wsis.methods.panoptic.mapper import PanopticLabelMapper

    labels, truth = data
    cfg = _cfg(tmp_path, labels)
    dicts = get_panoptic_train_dicts(cfg)
    out = PanopticLabelMapper(cfg, is_train=True)(dicts[0])
    ids, segments = truth[0]
    sem = np.full(ids.shape, 255)
    for s in segments:
        sem[ids == s["id"]] = s["category_id"]
    np.testing.assert_array_equal(out["sem_seg"].numpy(), sem)
    pan = out["pan_seg"].numpy()
    for k, s in enumerate(segments):  # index k of pan_classes ↔ segment k
        assert (pan == k).sum() == (ids == s["id"]).sum() and int(out["pan_classes"][k]) == s["category_id"]
    balls = [s for s in segments if s["category_id"] == 0]
    inst = out["instances"]
    assert len(inst) == len(balls) and inst.gt_classes.tolist() == [0] * len(balls)  # stuff boxes left out
    true = DatasetCatalog.get(f"{PREFIX}_panoptic")[0]  # detectron2's panoptic dict: no annotations, segment boxes
    assert "annotations" not in true
    from_segments = PanopticLabelMapper(cfg, is_train=True)(true)["instances"]
    assert from_segments.gt_boxes.tensor.tolist() == inst.gt_boxes.tensor.tolist()
    assert from_segments.gt_classes.tolist() == [0] * len(balls)
    bad = dict(dicts[0], segments_info=[dict(s, category_id=7) for s in dicts[0]["segments_info"]])
    with pytest.raises(ValueError, match=r"1.jpg \(image id 1\): segment classes \[7\] outside"):
        PanopticLabelMapper(cfg, is_train=True)(bad)


def test_psp_head_shapes_and_all_ignore(data, tmp_path):
    from detectron2.layers import ShapeSpec

    from wsis.methods.panoptic.psp_head import PSPSemSegHead

    cfg = _cfg(tmp_path, data[0])
    head = PSPSemSegHead(cfg, {"p3": ShapeSpec(channels=32, stride=8), "p4": ShapeSpec(channels=32, stride=16)})
    logits = head.layers({"p3": torch.randn(2, 32, 8, 8)})
    assert logits.shape == (2, 3, 8, 8) and head.common_stride == 8
    loss = head.losses(logits, torch.full((2, 64, 64), 255, dtype=torch.long))["loss_sem_seg"]
    assert loss.item() == 0.0 and loss.requires_grad
    head.eval()
    up, _ = head({"p3": torch.randn(1, 32, 8, 8)})
    assert up.shape == (1, 3, 64, 64)


@pytest.mark.parametrize("detections", ["gt", "predicted"])
def test_end_to_end_steps_train_the_crf(data, tmp_path, detections):
    from wsis.engine import WSISTrainer

    torch.manual_seed(0)
    cfg = _cfg(tmp_path, data[0], ["MODEL.WSPS_PANOPTIC.TRAIN_DETECTIONS", detections])
    trainer = WSISTrainer(cfg)
    crf = trainer.model.instance_crf
    before = [p.detach().clone() for p in crf.parameters()]
    trainer.train()
    assert all(not torch.equal(b, p) for b, p in zip(before, crf.parameters()))  # the matched loss reached them
    metrics = trainer.storage.latest()
    for key in ("loss_sem_seg", "loss_instance_crf", "loss_cls", "loss_rpn_cls"):
        assert np.isfinite(metrics[key][0]), key


def test_every_trainable_parameter_gets_a_gradient_in_both_stages(data, tmp_path):
    """So that DistributedDataParallel runs without find_unused_parameters: stage 1 freezes the CRF."""
    from detectron2.modeling import build_model
    from detectron2.utils.events import EventStorage

    from wsis.methods.panoptic.loaders import get_panoptic_train_dicts
    from wsis.methods.panoptic.mapper import PanopticLabelMapper

    for stage2 in (False, True):
        torch.manual_seed(0)
        cfg = _cfg(tmp_path, data[0], ["MODEL.WSPS_PANOPTIC.TRAIN_INSTANCE_CRF", str(stage2),
                                       "MODEL.WSPS_PANOPTIC.TRAIN_DETECTIONS", "gt"])
        model = build_model(cfg)
        mapper = PanopticLabelMapper(cfg, is_train=True)
        with EventStorage(0):
            losses = model([mapper(d) for d in get_panoptic_train_dicts(cfg)[:2]])
        sum(losses.values()).backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, (stage2, missing)
        assert all(p.requires_grad == stage2 for p in model.instance_crf.parameters())


def test_the_label_changes_the_losses(data, tmp_path):
    """A panoptic label in the folder must change the semantic and the matched CRF loss it feeds."""
    from detectron2.modeling import build_model

    from wsis.methods.panoptic.loaders import get_panoptic_train_dicts
    from wsis.methods.panoptic.mapper import PanopticLabelMapper

    torch.manual_seed(0)
    cfg = _cfg(tmp_path, data[0], ["MODEL.WSPS_PANOPTIC.TRAIN_DETECTIONS", "gt"])
    model = build_model(cfg)
    mapper = PanopticLabelMapper(cfg, is_train=True)
    d = get_panoptic_train_dicts(cfg)[0]
    swapped = dict(d, segments_info=[dict(s, category_id={1: 2, 2: 1}.get(s["category_id"], s["category_id"]))
                                     for s in d["segments_info"]])  # sky and grass exchanged
    from detectron2.utils.events import EventStorage

    with EventStorage(0):
        torch.manual_seed(1)
        a = model([mapper(d)])
        torch.manual_seed(1)
        b = model([mapper(swapped)])
    assert abs(a["loss_sem_seg"].item() - b["loss_sem_seg"].item()) > 1e-4
    assert abs(a["loss_instance_crf"].item() - b["loss_instance_crf"].item()) > 1e-4


def test_inference_is_non_overlapping_and_evaluates(data, tmp_path):
    from wsis.engine import WSISTrainer

    torch.manual_seed(0)
    cfg = _cfg(tmp_path, data[0], ["MODEL.WSPS_PANOPTIC.TRAIN_DETECTIONS", "gt", "SOLVER.MAX_ITER", "2"])
    trainer = WSISTrainer(cfg)
    trainer.train()
    model = trainer.model.eval()
    d = DatasetCatalog.get(f"{PREFIX}_panoptic")[0]
    from wsis.methods.panoptic.mapper import PanopticLabelMapper

    with torch.no_grad():
        out = model([PanopticLabelMapper(cfg, is_train=False)(d)])[0]
    ids, info = out["panoptic_seg"]
    assert ids.shape == (SIZE, SIZE) and out["sem_seg"].shape == (3, SIZE, SIZE)
    assert set(torch.unique(ids).tolist()) - {0} == {s["id"] for s in info}  # every pixel one segment at most
    stuff = [s for s in info if not s["isthing"]]
    assert all(s["category_id"] in (1, 2) and s["score"] == 1.0 for s in stuff)
    masks = out["instances"].pred_masks
    assert masks.sum(0).max() <= 1
    results = WSISTrainer.test(cfg, model)
    pq, seg = results["panoptic_seg"], results["panoptic_segments"]
    assert 0.0 <= pq["PQ"] <= 100.0 and {"PQ_th", "PQ_st"} <= set(pq)
    assert {"AP^r@0.5", "AP^r_th@0.5", "AP^r_st@0.5", "mIoU"} <= set(seg) and 0.0 <= seg["mIoU"] <= 100.0


def test_segment_evaluator_on_the_truth(data):
    """The truth as the output: PQ, AP^r (all, things, stuff) and mIoU are 100."""
    from wsis.evaluation.evaluators import PanopticQualityEvaluator, PanopticSegmentEvaluator

    _, truth = data
    dicts = DatasetCatalog.get(f"{PREFIX}_panoptic")
    evs = [PanopticQualityEvaluator(f"{PREFIX}_panoptic"), PanopticSegmentEvaluator(f"{PREFIX}_panoptic")]
    for ev in evs:
        ev.reset()
    for d, (ids, segments) in zip(dicts, truth):
        q = torch.zeros(3, SIZE, SIZE)
        for s in segments:
            q[s["category_id"]][torch.from_numpy(ids == s["id"])] = 1.0
        info = [{"id": s["id"], "category_id": s["category_id"], "isthing": s["category_id"] == 0, "score": 1.0}
                for s in segments]
        for ev in evs:
            ev.process([{"image_id": d["image_id"]}], [{"panoptic_seg": (torch.from_numpy(ids), info), "sem_seg": q}])
    pq, seg = evs[0].evaluate()["panoptic_seg"], evs[1].evaluate()["panoptic_segments"]
    assert pq["PQ"] == pytest.approx(100.0)
    for k in ("AP^r@0.5", "AP^r_th@0.5", "AP^r_st@0.5", "AP^r_vol", "mIoU"):
        assert seg[k] == pytest.approx(100.0), k


def test_next_round_labels(data, tmp_path):
    """tools/wsps_panoptic_round.py's job: a trained model's output, refined by the boxes and tags, as a label
    folder that training reads; no ball pixel outside a ball box."""
    from detectron2.modeling import build_model

    from wsis.data.coco_weak import load_coco_instances
    from wsis.methods.panoptic.label_folder import attach_panoptic_labels, read_panoptic_ids
    from wsis.methods.panoptic.pseudo_labels import panoptic_categories
    from wsis.methods.panoptic.round_job import make_next_round_labels

    torch.manual_seed(0)
    cfg = _cfg(tmp_path, data[0])
    model = build_model(cfg)
    json_file = os.path.join(os.path.dirname(data[0]), "instances.json")
    dicts, meta = load_coco_instances(json_file, os.path.join(os.path.dirname(data[0]), "images"), supervision="box")
    categories, isthing = panoptic_categories(json_file, meta)
    out = str(tmp_path / "round1")
    assert make_next_round_labels(cfg, model, dicts, isthing, categories, out, {"weights": "w0"}, progress=False,
                                  num_shards=2, shard_index=1) == 3
    assert make_next_round_labels(cfg, model, dicts, isthing, categories, out, {"weights": "w0"}, progress=False) == 3
    assert make_next_round_labels(cfg, model, dicts, isthing, categories, out, {"weights": "w0"}, progress=False) == 0
    with pytest.raises(ValueError):
        make_next_round_labels(cfg, model, dicts, isthing, categories, out, {"weights": "w1"}, progress=False)
    attached = attach_panoptic_labels(dicts, out, meta["thing_dataset_id_to_contiguous_id"])
    for d in attached:
        ids = read_panoptic_ids(d["pan_seg_file_name"])
        allowed = np.zeros(ids.shape, bool)
        for a in d["annotations"]:
            if a["category_id"] == 0:
                x, y, w, h = (int(round(v)) for v in a["bbox"])
                allowed[y:y + h, x:x + w] = True
        for s in d["segments_info"]:
            if s["category_id"] == 0:
                assert not ((ids == s["id"]) & ~allowed).any()


def test_round_command(data, tmp_path):
    """tools/wsps_panoptic_round.py end to end: a checkpoint in, a label folder with PQ against the json out."""
    import yaml
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from conftest import load_tool

    tool = load_tool("wsps_panoptic_round")
    torch.manual_seed(0)
    cfg = _cfg(tmp_path, data[0])
    DetectionCheckpointer(build_model(cfg), save_dir=str(tmp_path)).save("model")
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(yaml.safe_load(cfg.dump())))
    root = os.path.dirname(data[0])
    args = ["--config-file", str(cfg_file), "--json", os.path.join(root, "instances.json"), "--images",
            os.path.join(root, "images"), "--out", str(tmp_path / "r1"), "--no-progress"]
    with pytest.raises(SystemExit, match="MODEL.WEIGHTS 'nope.pth' is not a file"):
        tool.main(args + ["MODEL.WEIGHTS", "nope.pth"])
    metrics = tool.main(args + ["MODEL.WEIGHTS", str(tmp_path / "model.pth")])
    assert metrics["num_images"] == metrics["labelled_now"] == 6 and 0.0 <= metrics["PQ"] <= 100.0
    assert os.path.isfile(tmp_path / "r1" / "panoptic.json") and os.path.isfile(tmp_path / "r1" / "metrics.json")
    two = args[:7] + [str(tmp_path / "r2"), "--no-progress", "--num-gpus", "2", "MODEL.WEIGHTS",
                      str(tmp_path / "model.pth")]  # one process per device under launch (2 CPU processes here)
    tool.main(two)
    for f in ("panoptic.json", "metrics.json", "1.png", "6.png"):
        assert (tmp_path / "r1" / f).read_bytes() == (tmp_path / "r2" / f).read_bytes(), f


def test_the_network_learns_a_learnable_set(data, tmp_path):
    """Trained end to end for 100 iterations on the six sky / grass / balls images with their true labels, it
    segments them: stuff PQ and mIoU well above chance (91 and 84 when written; random weights give about 0)."""
    from wsis.engine import WSISTrainer

    torch.manual_seed(0)
    cfg = _cfg(tmp_path, data[0], ["MODEL.WSPS_PANOPTIC.TRAIN_DETECTIONS", "gt", "SOLVER.MAX_ITER", "100",
                                   "SOLVER.IMS_PER_BATCH", "4", "SOLVER.BASE_LR", "0.02", "SOLVER.WARMUP_ITERS", "10",
                                   "MODEL.ANCHOR_GENERATOR.SIZES", "[[8], [16], [32], [64], [128]]"])
    trainer = WSISTrainer(cfg)
    trainer.train()
    results = WSISTrainer.test(cfg, trainer.model)
    assert results["panoptic_seg"]["PQ_st"] > 75.0
    assert results["panoptic_segments"]["mIoU"] > 70.0
