"""CAM / Grad-CAM with a real detectron2: the classifier trains through WSISTrainer, its cues reach the cue store and
the semantic labels, and a SemanticSegmentor trains on those labels and is scored by SemSegEvaluator."""
import math
import os

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.config import get_cfg  # noqa: E402
from detectron2.data import DatasetCatalog, MetadataCatalog  # noqa: E402

from wsis.config import add_wsis_config  # noqa: E402

from conftest import REPO  # noqa: E402
from tag_helpers import _cam_cfg, _register_sem_gt, _tag_data, _trained_classifier, _tree_bytes  # noqa: E402

SEM_CFG = os.path.join(REPO, "projects", "CAM", "configs", "semantic_R18_FPN_scratch_copy_paste.yaml")


@pytest.fixture
def tag_data(tmp_path):
    return _tag_data(tmp_path)


def test_classifier_trains_with_a_10x_classifier_and_skips_untagged(tag_data, tmp_path):
    from detectron2.modeling import build_model

    from wsis.engine import WSISTrainer

    cfg = _cam_cfg(tmp_path)
    torch.manual_seed(0)
    model = build_model(cfg)
    opt = WSISTrainer.build_optimizer(cfg, model)
    lrs = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert lrs[id(model.head.classifier.weight)] == pytest.approx(10 * cfg.SOLVER.BASE_LR)
    assert {lrs[id(p)] for n, p in model.named_parameters() if n.startswith("backbone.")} == {cfg.SOLVER.BASE_LR}
    assert model.head.classifier.bias is None and model.head.classifier.weight.shape[:2] == (2, 128)

    loader = WSISTrainer.build_train_loader(cfg)
    batch = next(iter(loader))
    assert all("image_labels" in x for x in batch)
    losses = model(batch)
    assert set(losses) == {"loss_cls"} and math.isfinite(float(losses["loss_cls"]))
    losses["loss_cls"].backward()
    assert model.head.classifier.weight.grad.abs().sum() > 0

    # an untagged image adds nothing to the loss under UNTAGGED "skip", and a negative term under "negative"
    model.eval()  # (fixed BN statistics: the other image's logits do not depend on the batch)
    data = {d["image_id"]: d for d in DatasetCatalog.get("cam_test_tag")}
    from wsis.data.mapper import WeakDatasetMapper

    mapper = WeakDatasetMapper(cfg, is_train=False)
    tagged, untagged = mapper(dict(data[1])), mapper(dict(data[8]))
    tagged["image_labels"], untagged["image_labels"] = list(data[1]["image_labels"]), []
    model.training = True  # the loss path with eval-mode layers
    alone = float(model([tagged])["loss_cls"])
    with_untagged = float(model([tagged, untagged])["loss_cls"])
    assert with_untagged == pytest.approx(alone, rel=1e-5)
    model.untagged = "negative"
    assert float(model([tagged, untagged])["loss_cls"]) != pytest.approx(alone, rel=1e-3)
    assert float(model([untagged])["loss_cls"]) > 0
    model.untagged = "skip"
    zero = model([untagged])["loss_cls"]
    assert float(zero) == 0.0 and zero.requires_grad


def test_nan_logits_and_unknown_tags_name_the_image(tag_data, tmp_path):
    from detectron2.modeling import build_model

    from wsis.data.mapper import WeakDatasetMapper

    cfg = _cam_cfg(tmp_path)
    model = build_model(cfg).eval()
    x = WeakDatasetMapper(cfg, is_train=False)(dict(DatasetCatalog.get("cam_test_tag")[0]))
    x["image_labels"] = [5]
    model.training = True
    with pytest.raises(ValueError, match=r"0\.png \(image id 1\)"):
        model([x])
    with torch.no_grad():
        model.head.classifier.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"0\.png \(image id 1\)"):
        model([x])


def test_cues_gradcam_equals_cam_for_the_gap_linear_head(tag_data, tmp_path):
    from detectron2.modeling import build_model

    # one scale (+ flip): Grad-CAM of a view is ReLU(CAM) / (h·w), so over several scales the views are weighted
    # differently and the fused maps differ
    cfg = _cam_cfg(tmp_path, ["MODEL.CAM.SCALES", "(1.0,)"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    with torch.no_grad():  # positive weights on ReLU features: both maps are non-zero
        model.head.classifier.weight.abs_()
        model.head.classifier.weight[1] *= torch.rand_like(model.head.classifier.weight[1])
    image = torch.as_tensor(cv2.imread(tag_data[1] + "/0.png").transpose(2, 0, 1).copy())
    cam = model.cues(image, [0, 1], method="cam")
    grad = model.cues(image, [0, 1], method="gradcam")
    assert cam.shape == grad.shape == (2, 16, 16)
    assert torch.allclose(cam, grad, atol=1e-4) and not torch.allclose(cam[0], cam[1], atol=1e-2)
    peak = cam.flatten(1).max(1).values  # max / (max + 1e-5) (IRNet's normalisation): ≈ 1 unless the map is tiny
    assert ((peak > 0.99) & (peak <= 1)).all(), peak
    assert model.cues(image, []).shape == (0, 16, 16)
    out = model([{"image": image, "height": 64, "width": 64}])[0]
    assert out["image_scores"].shape == (2,) and ((out["image_scores"] >= 0) & (out["image_scores"] <= 1)).all()


def test_classification_evaluator_by_hand(tag_data):
    from wsis.evaluation.evaluators import MultiLabelClassificationEvaluator

    ev = MultiLabelClassificationEvaluator("cam_test")
    ev.reset()
    # class 0 positives: images 1, 3 (scores 0.9, 0.7); negatives 2, 4 (0.8, 0.6): AP = (1 + 2/3) / 2
    rows = [(1, [0], [0.9, 0.1]), (2, [], [0.8, 0.2]), (3, [0, 1], [0.7, 0.9]), (4, [1], [0.6, 0.8])]
    for image_id, tags, scores in rows:
        ev.process([{"image_id": image_id, "image_labels": tags}], [{"image_scores": torch.tensor(scores)}])
    res = ev.evaluate()["classification"]
    assert res["AP-square"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert res["AP-disc"] == pytest.approx(100.0)
    assert res["mAP"] == pytest.approx((res["AP-square"] + 100) / 2)
    # at 0.5: predicted {0}, {0}, {0, 1}, {0, 1}; true {0}, {}, {0, 1}, {1}: tp 4, fp 2, fn 0
    assert res["precision"] == pytest.approx(100 * 4 / 6) and res["recall"] == pytest.approx(100.0)
    assert res["F1"] == pytest.approx(100 * 2 * (4 / 6) / (4 / 6 + 1))


def _sem_cfg(tmp_path, label_dir, opts=()):
    import wsis.modeling  # noqa: F401

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(SEM_CFG)
    cfg.merge_from_list(["MODEL.SEM_SEG_HEAD.NUM_CLASSES", "3", "DATASETS.TRAIN", "('cam_test_tag',)",
                         "DATASETS.TEST", "('cam_test_sem_seg',)", "WSIS.DATA.SEMANTIC_LABELS", f"('{label_dir}',)",
                         "SOLVER.IMS_PER_BATCH", "4", "SOLVER.MAX_ITER", "2", "INPUT.MIN_SIZE_TRAIN", "(64,)",
                         "INPUT.MAX_SIZE_TRAIN", "64", "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "64",
                         "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", str(tmp_path / "sem"), "SEED", "0", *opts])
    return cfg


def test_semantic_maps_reach_the_mapper_and_the_evaluator(tag_data, tmp_path):
    from detectron2.data import DatasetMapper
    from detectron2.evaluation import SemSegEvaluator

    dicts = _register_sem_gt(tmp_path)
    md = MetadataCatalog.get("cam_test_sem_seg")
    assert md.stuff_classes == ["background", "square", "disc"] and md.ignore_label == 255
    first = cv2.imread(dicts[0]["sem_seg_file_name"], cv2.IMREAD_UNCHANGED)
    assert first.dtype == np.uint8 and set(np.unique(first)) == {0, 1}  # image 0: a square only
    cfg = _sem_cfg(tmp_path, str(tmp_path / "gt"))
    x = DatasetMapper(cfg, is_train=False)(dict(dicts[0]))
    # the test mapper drops sem_seg; the train mapper (no flip) reads the PNG into "sem_seg"
    train = DatasetMapper(cfg, is_train=True, augmentations=[], image_format="BGR")(dict(dicts[0]))
    assert torch.equal(train["sem_seg"], torch.from_numpy(first.astype(np.int64)))
    ev = SemSegEvaluator("cam_test_sem_seg", distributed=False)
    ev.reset()
    for d in dicts:  # perfect logits → mIoU 100
        gt = torch.from_numpy(cv2.imread(d["sem_seg_file_name"], cv2.IMREAD_UNCHANGED).astype(np.int64))
        ev.process([{"file_name": d["file_name"]}], [{"sem_seg": torch.nn.functional.one_hot(gt, 3).permute(2, 0, 1).float()}])
    assert ev.evaluate()["sem_seg"]["mIoU"] == pytest.approx(100.0)
    assert x["image"].shape[-2:] == (64, 64)


def test_semantic_segmentor_trains_on_labels_and_survives_all_ignore(tag_data, tmp_path):
    from detectron2.modeling import build_model

    from wsis.data.semantic_labels import write_label_png
    from wsis.engine import WSISTrainer

    _register_sem_gt(tmp_path)
    labels = tmp_path / "labels"
    for d in DatasetCatalog.get("cam_test_tag"):
        lab = np.full((64, 64), 255, np.uint8)
        if d["image_id"] % 2:
            lab[:32] = 0
            lab[40:, 40:] = 2 if 1 in d["image_labels"] else 0
        write_label_png(lab, str(labels / f"{d['image_id']}.png"))
    cfg = _sem_cfg(tmp_path, str(labels))
    torch.manual_seed(0)
    model = build_model(cfg)
    batch = next(iter(WSISTrainer.build_train_loader(cfg)))
    assert all(x["sem_seg"].shape == (64, 64) for x in batch)
    loss = model(batch)["loss_sem_seg"]
    assert math.isfinite(float(loss))
    for x in batch:  # every pixel ignored: the parent's mean CE is NaN, this head's loss is a zero with a graph
        x["sem_seg"] = torch.full_like(x["sem_seg"], 255)
    zero = model(batch)["loss_sem_seg"]
    assert float(zero) == 0.0 and zero.requires_grad
    zero.backward()
    # missing label map: an error naming the image
    os.remove(labels / "1.png")
    with pytest.raises(ValueError, match="image id 1"):
        WSISTrainer.build_train_loader(cfg)
    # the whole path through the trainer, evaluated by SemSegEvaluator
    write_label_png(np.zeros((64, 64), np.uint8), str(labels / "1.png"))
    trainer = WSISTrainer(cfg)
    trainer.train()
    res = WSISTrainer.test(cfg, trainer.model)
    assert 0 <= res["sem_seg"]["mIoU"] <= 100


def test_cues_store_resume_shards_and_labels(tag_data, tmp_path):
    from wsis.cli import make_cues, make_semantic_labels
    from wsis.data.cue_store import CueStore

    json_file, images = tag_data
    config, weights = _trained_classifier(tmp_path)
    base = ["--json", json_file, "--images", images, "--config-file", config, "--no-progress"]
    opts = ["MODEL.WEIGHTS", weights, "MODEL.CAM.SCALES", "(1.0, 0.5)"]
    out = tmp_path / "cues"
    metrics = make_cues.main(base + ["--out", str(out), "--workers", "1"] + opts)
    store = CueStore(str(out))
    assert len(store) == 8 and metrics["num_skipped"] == 0 and 0 <= metrics["cues/best_miou"] <= 1
    classes, cams = store[1]
    assert classes.tolist() == [0] and cams.shape == (1, 16, 16) and cams.max() <= 1
    assert store[8][0].tolist() == [] and store[8][1].shape == (0, 16, 16)  # untagged: no map
    assert store.provenance["method"] == "cam" and store.provenance["checkpoint_sha256"]
    first = _tree_bytes(out)
    # two workers, and two shards merged: the same store byte for byte (metrics.json aside)
    other = tmp_path / "cues2"
    make_cues.main(base + ["--out", str(other), "--workers", "2"] + opts)
    shards = [tmp_path / f"shard{i}" for i in range(2)]
    for i, s in enumerate(shards):
        make_cues.main(base + ["--out", str(s), "--num-shards", "2", "--shard-index", str(i), "--workers", "1"] + opts)
    merged = tmp_path / "merged"
    make_cues.main(base + ["--merge", *map(str, shards), "--out", str(merged)])
    strip = lambda t: {k: v for k, v in t.items() if k not in ("metrics.json",)}  # noqa: E731
    assert strip(_tree_bytes(other)) == strip(first) == strip(_tree_bytes(merged))
    # a different method into the same folder is refused; Grad-CAM elsewhere works
    with pytest.raises(SystemExit, match="error"):
        make_cues.main(base + ["--out", str(out), "--method", "gradcam"] + opts)
    make_cues.main(base + ["--out", str(tmp_path / "gradcam"), "--method", "gradcam"] + opts)
    assert CueStore(str(tmp_path / "gradcam")).provenance["params"]["cue"] == "gradcam"

    # semantic labels from the cues: PNGs for every image, quality against the true masks, resumable
    labels = tmp_path / "labels"
    m = make_semantic_labels.main(["--cues", str(out), "--json", json_file, "--images", images, "--out",
                                   str(labels), "--workers", "1", "--no-progress"])
    pngs = sorted(p for p in os.listdir(labels) if p.endswith(".png"))
    assert len(pngs) == 8 and m["num_images"] == 8 and 0 <= m["miou"] <= 1 and "fg_precision" in m
    untagged = cv2.imread(str(labels / "8.png"), cv2.IMREAD_UNCHANGED)
    assert untagged.dtype == np.uint8 and (untagged == 0).all()  # no tag: all background
    for p in pngs:
        assert set(np.unique(cv2.imread(str(labels / p), cv2.IMREAD_UNCHANGED))) <= {0, 1, 2, 255}
    before = _tree_bytes(labels)
    os.remove(labels / "3.png")
    make_semantic_labels.main(["--cues", str(out), "--json", json_file, "--images", images, "--out", str(labels),
                               "--workers", "2", "--no-progress"])
    assert _tree_bytes(labels) == before
    with pytest.raises(SystemExit, match="other cues or settings"):
        make_semantic_labels.main(["--cues", str(out), "--json", json_file, "--images", images, "--out",
                                   str(labels), "--no-progress", "WSIS.CAM.LABELS", "wsps"])


def test_panoptic_semantic_maps_things_and_stuff(tmp_path, monkeypatch):
    from conftest import SHARED_DATA

    from wsis.data.datasets import register_panoptic_semantic

    if not os.path.isdir(os.path.join(SHARED_DATA, "coco_panoptic_val100")):
        pytest.skip("no shared data")
    import wsis.data.datasets  # noqa: F401

    if "pan_sem_test" in DatasetCatalog.list():
        DatasetCatalog.remove("pan_sem_test")
        MetadataCatalog.remove("pan_sem_test")
    register_panoptic_semantic("pan_sem_test", "coco_panoptic_val100", str(tmp_path / "pan"))
    dicts = DatasetCatalog.get("pan_sem_test")
    md = MetadataCatalog.get("pan_sem_test")
    assert len(dicts) == 100 and len(md.stuff_classes) == 134 and md.stuff_classes[0] == "background"
    stuff_names = set(MetadataCatalog.get("coco_panoptic_val100").stuff_classes[80:])
    seen = set()
    for d in dicts[:5]:
        lab = cv2.imread(d["sem_seg_file_name"], cv2.IMREAD_UNCHANGED)
        assert lab.shape == cv2.imread(d["pan_seg_file_name"]).shape[:2] and 0 not in np.unique(lab)
        seen |= {md.stuff_classes[v] for v in np.unique(lab) if v != 255}
    assert seen & stuff_names and seen - stuff_names  # things and stuff both labelled


def test_irnet_classifier_config():
    """Base-CAM.yaml is IRNet's network: ResNet-50 at stride 16 (dilated res5), stem + res2 + res3 frozen, 10x LR."""
    from detectron2.modeling import build_model

    from wsis.engine import WSISTrainer

    import wsis.modeling  # noqa: F401

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(os.path.join(REPO, "projects", "CAM", "configs", "cam_R_50_coco_tiny.yaml"))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""])
    model = build_model(cfg)
    assert model.backbone.output_shape()["res5"].stride == 16 and model.head.classifier.weight.shape == (80, 2048, 1, 1)
    frozen = {n.split(".")[1] for n, p in model.named_parameters() if n.startswith("backbone.") and not p.requires_grad}
    trained = {n.split(".")[1] for n, p in model.named_parameters() if n.startswith("backbone.") and p.requires_grad}
    assert frozen == {"stem", "res2", "res3"} and trained == {"res4", "res5"}
    opt = WSISTrainer.build_optimizer(cfg, model)
    lrs = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert lrs[id(model.head.classifier.weight)] == pytest.approx(1.0)  # 0.1 × 10
    x = torch.randint(0, 255, (3, 96, 128), dtype=torch.uint8)
    assert model.eval().cues(x, [3, 7]).shape == (2, 24, 32)  # stride 4 of 96 x 128
