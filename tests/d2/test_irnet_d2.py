"""IRNet with a real detectron2: the network trains on IR labels made from a classifier's cues (frozen backbone or
fine-tuned, 10× displacement LR), and its label synthesis writes instance pseudo masks and semantic labels into the
store."""
import json
import math
import os

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.config import get_cfg  # noqa: E402

from wsis.config import add_wsis_config  # noqa: E402

from conftest import REPO  # noqa: E402
from tag_helpers import _tag_data, _trained_classifier, _tree_bytes  # noqa: E402

IRNET_CFG = os.path.join(REPO, "projects", "IRNet", "configs", "irnet_R18_scratch_copy_paste.yaml")
MRCNN_CFG = os.path.join(REPO, "projects", "IRNet", "configs", "mask_rcnn_R18_FPN_scratch_copy_paste.yaml")


@pytest.fixture
def ir_labels(tmp_path):
    """A tag set, a briefly trained classifier, its cues and IRNet's confident (IR) labels."""
    from wsis.cli import make_cues, make_semantic_labels

    json_file, images = _tag_data(tmp_path)
    config, weights = _trained_classifier(tmp_path)
    cues = tmp_path / "cues"
    make_cues.main(["--json", json_file, "--images", images, "--config-file", config, "--no-progress", "--out",
                    str(cues), "--workers", "1", "MODEL.WEIGHTS", weights, "MODEL.CAM.SCALES", "(1.0,)"])
    labels = tmp_path / "ir_labels"
    make_semantic_labels.main(["--cues", str(cues), "--json", json_file, "--images", images, "--out", str(labels),
                               "--workers", "1", "--no-progress"])
    return {"json": json_file, "images": images, "cam": weights, "cues": str(cues), "labels": str(labels)}


def _irnet_cfg(tmp_path, data, opts=()):
    import wsis.modeling  # noqa: F401

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(IRNET_CFG)
    cfg.merge_from_list(["MODEL.WEIGHTS", data["cam"], "DATASETS.TRAIN", "('cam_test_tag',)",
                         "WSIS.DATA.SEMANTIC_LABELS", f"('{data['labels']}',)", "SOLVER.IMS_PER_BATCH", "4",
                         "SOLVER.MAX_ITER", "3", "INPUT.MIN_SIZE_TRAIN", "(48, 64, 80)", "INPUT.MAX_SIZE_TRAIN",
                         "80", "INPUT.CROP.SIZE", "(64, 64)", "DATALOADER.NUM_WORKERS", "0",
                         "OUTPUT_DIR", str(tmp_path / "irnet"), "SEED", "0", *opts])
    return cfg


def test_irnet_trains_on_ir_labels_with_a_frozen_backbone(ir_labels, tmp_path):
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from wsis.engine import WSISTrainer

    cfg = _irnet_cfg(tmp_path, ir_labels, ["MODEL.IRNET.FREEZE_BACKBONE", "True"])  # IRNet's (Base-IRNet.yaml)
    torch.manual_seed(0)
    model = build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    cam_state = torch.load(ir_labels["cam"], map_location="cpu", weights_only=False)["model"]
    assert torch.equal(model.backbone.stem.conv1.weight, cam_state["backbone.stem.conv1.weight"])
    assert not any(p.requires_grad for p in model.backbone.parameters())
    opt = WSISTrainer.build_optimizer(cfg, model)
    lrs = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    base = cfg.SOLVER.BASE_LR
    assert {lrs[id(p)] for n, p in model.named_parameters() if n.startswith("head.disp_")} == {10 * base}
    assert {lrs[id(p)] for n, p in model.named_parameters() if n.startswith("head.boundary_")} == {base}
    assert all(id(p) not in lrs for p in model.backbone.parameters())

    batch = next(iter(WSISTrainer.build_train_loader(cfg)))
    assert all(x["sem_seg"].shape == x["image"].shape[-2:] for x in batch)
    model.train()
    assert not model.backbone.training  # frozen BatchNorm statistics
    losses = model(batch)
    assert set(losses) == {"loss_irnet_boundary", "loss_irnet_displacement"}
    assert all(math.isfinite(float(v)) for v in losses.values())
    sum(losses.values()).backward()
    assert model.head.boundary_out.weight.grad.abs().sum() > 0
    assert model.head.disp_out[2].weight.grad.abs().sum() > 0
    for x in batch:  # no IR label: an error that names the image
        del x["sem_seg"]
    with pytest.raises(ValueError, match=r"image id \d+"):
        model(batch)

    trainer = WSISTrainer(cfg)
    trainer.resume_or_load(resume=False)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("backbone."))
    assert not torch.equal(before["head.boundary_out.weight"], after["head.boundary_out.weight"])
    assert not torch.equal(after["head.disp_out.3.running_mean"], torch.zeros(2))  # MeanShift tracked D's mean

    model = trainer.model.eval()
    image = torch.as_tensor(cv2.imread(os.path.join(ir_labels["images"], "0.png")).transpose(2, 0, 1).copy())
    out = model([{"image": image[:, :61, :57], "height": 61, "width": 57}])[0]  # any size: no pad to 512
    assert out["boundary"].shape == (16, 15) and out["displacement"].shape == (2, 16, 15)
    assert ((out["boundary"] >= 0) & (out["boundary"] <= 1)).all()


def test_irnet_fine_tunes_the_backbone_of_the_copy_paste_config(ir_labels, tmp_path):
    """The copy-paste config fine-tunes its from-scratch backbone (MODEL.IRNET.FREEZE_BACKBONE False): the
    backbone's parameters train at the base LR, its BatchNorm statistics update, and its weights move."""
    from wsis.engine import WSISTrainer

    cfg = _irnet_cfg(tmp_path, ir_labels, ["SOLVER.MAX_ITER", "2"])
    assert cfg.MODEL.IRNET.FREEZE_BACKBONE is False
    trainer = WSISTrainer(cfg)
    trainer.resume_or_load(resume=False)
    model = trainer.model
    assert all(p.requires_grad for p in model.backbone.parameters())
    lrs = {id(p): g["lr"] for g in trainer.optimizer.param_groups for p in g["params"]}
    assert {lrs[id(p)] for p in model.backbone.parameters()} == {cfg.SOLVER.BASE_LR}
    model.train()
    assert model.backbone.training
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.train()
    after = trainer.model.state_dict()
    assert not torch.equal(before["backbone.stem.conv1.weight"], after["backbone.stem.conv1.weight"])
    assert not torch.equal(before["backbone.res3.0.conv1.norm.running_mean"],
                           after["backbone.res3.0.conv1.norm.running_mean"])


def _trained_irnet(tmp_path, data):
    from detectron2.checkpoint import DetectionCheckpointer

    from wsis.engine import WSISTrainer

    cfg = _irnet_cfg(tmp_path, data, ["SOLVER.MAX_ITER", "2"])
    trainer = WSISTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    DetectionCheckpointer(trainer.model, save_dir=str(tmp_path)).save("irnet")
    config = tmp_path / "irnet.yaml"
    config.write_text(cfg.dump())
    return str(config), str(tmp_path / "irnet.pth")


def test_irnet_generation_into_the_store_resumes_and_shards(ir_labels, tmp_path):
    from wsis.cli import make_pseudo_masks
    from wsis.data.pseudo_store import load_pseudo_masks

    config, weights = _trained_irnet(tmp_path, ir_labels)
    base = ["--method", "irnet", "--json", ir_labels["json"], "--images", ir_labels["images"], "--config-file",
            config, "--no-progress", "--num-vis", "0"]
    opts = ["MODEL.WEIGHTS", weights, "WSIS.IRNET.CUES", ir_labels["cues"], "WSIS.IRNET.WALK_STEPS", "32",
            "WSIS.IRNET.MIN_FRAGMENT", "0.0"]
    out = tmp_path / "pseudo"
    metrics = make_pseudo_masks.main(base + ["--out", str(out), "--workers", "1"] + opts)
    store = out / "pseudo_masks.json"
    prov, records = load_pseudo_masks(str(store))
    assert len(records) == 8 and prov["method"] == "irnet" and prov["cues_sha256"] and prov["checkpoint_sha256"]
    assert prov["params"]["walk_steps"] == 32
    instances = [i for r in records.values() for i in r["instances"]]
    assert instances and all(i["annotation_id"] is None and i["valid"] for i in instances)
    assert {i["category_id"] for i in instances} <= {0, 1}
    assert records[8]["instances"] == []  # untagged: no cue, no instance
    for i in records[1]["instances"]:  # the classes of the cues: image 1 (id 1) is tagged square only
        assert i["category_id"] == 0
    for key in ("AP^r@0.25", "AP^r@0.5", "AP^r@0.75", "pixel_miou"):
        assert key in metrics and math.isfinite(metrics[key])
    sem = sorted(os.listdir(out / "semantic_irnet"))
    assert len(sem) == 8
    assert set(np.unique(cv2.imread(str(out / "semantic_irnet" / "1.png"), cv2.IMREAD_UNCHANGED))) <= {0, 1}
    first = store.read_bytes()

    # killed after three images (an interrupt in the fourth): the journal keeps them, a rerun ends with the same bytes
    from wsis.methods.irnet.generator import IRNetGenerator

    real, calls = IRNetGenerator.__call__, []

    def interrupted(self, d):
        calls.append(d["image_id"])
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(self, d)

    other = tmp_path / "pseudo2"
    IRNetGenerator.__call__ = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            make_pseudo_masks.main(base + ["--out", str(other), "--workers", "1"] + opts)
    finally:
        IRNetGenerator.__call__ = real
    journal = str(other / "pseudo_masks.json") + ".partial.jsonl"
    assert not (other / "pseudo_masks.json").exists() and len(open(journal).read().splitlines()) == 1 + 3
    make_pseudo_masks.main(base + ["--out", str(other), "--workers", "2"] + opts)
    assert (other / "pseudo_masks.json").read_bytes() == first and not os.path.exists(journal)

    # two shards merged: the same store
    shards = [tmp_path / f"shard{i}" for i in range(2)]
    for i, s in enumerate(shards):
        make_pseudo_masks.main(base + ["--out", str(s), "--num-shards", "2", "--shard-index", str(i), "--workers",
                                       "1"] + opts)
    merged = tmp_path / "merged.json"
    make_pseudo_masks.main(["--merge", *[str(s / "pseudo_masks.json") for s in shards], "--out", str(merged)])
    assert merged.read_bytes() == first
    assert _tree_bytes(out / "semantic_irnet") == _tree_bytes(other / "semantic_irnet")

    # the store trains Proxy Mask R-CNN on the tag dataset: its instances become the annotations, and a pseudo mask
    # changed in the store changes the mask loss it feeds
    _proxy_mask_rcnn_reads_the_store(tmp_path, first)


def _proxy_mask_rcnn_reads_the_store(tmp_path, store_bytes):
    from detectron2.modeling import build_model

    import wsis.modeling  # noqa: F401
    from wsis.core.masks import encode_mask, to_bool_mask
    from wsis.data.build import get_weak_train_dicts
    from wsis.engine import WSISTrainer

    def cfg_for(store):
        cfg = add_wsis_config(get_cfg())
        cfg.merge_from_file(MRCNN_CFG)
        cfg.merge_from_list(["MODEL.ROI_HEADS.NUM_CLASSES", "2", "DATASETS.TRAIN", "('cam_test_tag',)",
                             "WSIS.DATA.PSEUDO_MASKS", f"('{store}',)", "SOLVER.IMS_PER_BATCH", "8",
                             "INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "64", "DATALOADER.NUM_WORKERS",
                             "0", "INPUT.RANDOM_FLIP", "none", "OUTPUT_DIR", str(tmp_path / "mrcnn"), "SEED", "0"])
        return cfg

    store = tmp_path / "store.json"
    store.write_bytes(store_bytes)
    doc = json.loads(store_bytes)
    with_instances = {r["image_id"] for r in doc["images"] if r["instances"]}
    dicts = get_weak_train_dicts(cfg_for(store))
    assert {d["image_id"] for d in dicts} == with_instances  # images without a pseudo instance are filtered
    for d in dicts:
        rec = next(r for r in doc["images"] if r["image_id"] == d["image_id"])
        assert len(d["annotations"]) == len(rec["instances"]) and all(a["mask_valid"] for a in d["annotations"])
    cfg = cfg_for(store)
    torch.manual_seed(0)
    model = build_model(cfg)
    batch = next(iter(WSISTrainer.build_train_loader(cfg)))
    assert all(x["instances"].has("gt_masks") and len(x["instances"]) for x in batch)

    def mask_loss(b):
        from detectron2.utils.events import EventStorage

        torch.manual_seed(0)
        with EventStorage(0):
            return float(model(b)["loss_mask"])

    base = mask_loss(batch)
    for r in doc["images"]:  # every pseudo mask reduced to its top-left quarter
        for inst in r["instances"]:
            m = to_bool_mask(inst["segmentation"])
            ys, xs = np.nonzero(m)
            keep = np.zeros_like(m)
            keep[ys.min():(ys.min() + ys.max()) // 2 + 1, xs.min():(xs.min() + xs.max()) // 2 + 1] = True
            inst["segmentation"] = encode_mask(m & keep)
    other = tmp_path / "store2.json"
    other.write_text(json.dumps(doc))
    batch2 = next(iter(WSISTrainer.build_train_loader(cfg_for(other))))
    assert [x["image_id"] for x in batch2] == [x["image_id"] for x in batch]
    assert mask_loss(batch2) != pytest.approx(base, rel=1e-4)


def test_base_irnet_is_the_official_network():
    """Base-IRNet.yaml: ResNet-50 (res5 dilated: stride 16) with all five levels, the official branch widths (the
    boundary conv reads 5 × 32 = 160 channels, the displacement merge 3 × 256 = 768, its last stage 64 + 128 + 256 =
    448), outputs at stride 4, the backbone frozen."""
    from detectron2.modeling import build_model

    import wsis.modeling  # noqa: F401

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(os.path.join(REPO, "projects", "IRNet", "configs", "Base-IRNet.yaml"))
    cfg.merge_from_list(["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu"])
    model = build_model(cfg).eval()
    shapes = model.backbone.output_shape()
    assert [shapes[f].stride for f in cfg.MODEL.IRNET.IN_FEATURES] == [4, 4, 8, 16, 16]
    assert model.head.boundary_out.in_channels == 160 and model.head.disp_merge[0].in_channels == 768
    assert model.head.disp_out[0][0].in_channels == 448 and model.stride == 4
    assert not any(p.requires_grad for p in model.backbone.parameters())
    b, d = model.outputs(torch.zeros(3, 70, 90, dtype=torch.uint8))
    assert b.shape == (18, 23) and d.shape == (2, 18, 23)
