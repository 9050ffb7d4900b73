"""BoxCaseg's three stages with a real detectron2 on the shared data: joint training, proxy masks, Proxy Mask R-CNN."""
import json
import math
import os

import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.config import get_cfg  # noqa: E402
from detectron2.data import DatasetCatalog  # noqa: E402

from wsis.config import add_wsis_config  # noqa: E402
from wsis.data.pseudo_store import decode_mask, load_pseudo_masks  # noqa: E402
from wsis.core.boxes import annotation_extent  # noqa: E402

from conftest import COCO_TINY, REPO, SHARED_DATA, load_tool, write_coco  # noqa: E402

BOXCASEG = os.path.join(REPO, "projects", "BoxCaseg", "configs", "boxcaseg_coco_tiny_instant_test.yaml")
PROXY_RCNN = os.path.join(REPO, "projects", "BoxCaseg", "configs", "proxy_mask_rcnn_coco_tiny_instant_test.yaml")


def _subset(tmp_path, split, n):
    """The first n images of a coco_tiny split (with masks) as a json; returns (json, image folder)."""
    src = os.path.join(COCO_TINY, "annotations", f"instances_{split}2017.json")
    if not os.path.isfile(src) or not os.path.isdir(os.path.join(SHARED_DATA, "ecssd")):
        pytest.skip("shared data not found")
    data = json.load(open(src))
    images = sorted(data["images"], key=lambda i: i["id"])[:n]
    ids = {i["id"] for i in images}
    anns = [a for a in data["annotations"] if a["image_id"] in ids]
    return write_coco(tmp_path / f"{split}{n}.json", images, anns, data["categories"]), os.path.join(
        COCO_TINY, f"{split}2017")


def _cfg(path, opts):
    import wsis.modeling  # noqa: F401  (registers datasets, heads, meta-architectures, loaders)

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(path)
    cfg.merge_from_list(opts)
    return cfg


def _register(name, json_file, images, supervision):
    from wsis.data.datasets import register_coco_weak

    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
    register_coco_weak(name, json_file, images, supervision=supervision)


OFFICIAL = ["MODEL.BOXCASEG.FUSE_DIM", "0", "MODEL.BOXCASEG.HEAD_LAYERS", "2", "MODEL.BOXCASEG.TRANSFER_BIAS",
            "affine", "MODEL.BOXCASEG.MIX", "logit", "MODEL.BOXCASEG.NORM", "GN"]


@pytest.mark.parametrize("variant", [[], OFFICIAL], ids=["paper", "official"])
def test_crop_loader_batches_and_one_step(variant):
    from detectron2.modeling import build_model

    from wsis.engine import WSISTrainer

    cfg = _cfg(BOXCASEG, ["SOLVER.IMS_PER_BATCH", "16", "DATALOADER.NUM_WORKERS", "0", *variant])
    batch = next(iter(WSISTrainer.build_train_loader(cfg)))
    assert len(batch) == 16 and sum(x["is_salient"] for x in batch) == 7  # 9 box : 7 salient
    for x in batch:
        assert x["image"].shape == (3, 128, 128) and x["box_label"].shape == (128, 128) and x["box_label"].any()
        assert (x["salient_mask"] is not None) == x["is_salient"]
    model = build_model(cfg).train()
    losses = model(batch)
    assert set(losses) == {"loss_mil", "loss_pixel"} and all(math.isfinite(float(v.detach())) for v in losses.values())
    sum(losses.values()).backward()
    weak = model.heads.weak if not variant else model.heads.weak[0]
    assert weak.weight.grad is not None and model.heads.weight_transfer.fc1.weight.grad is not None
    if variant:
        assert isinstance(model.fuse, torch.nn.Identity) and model.heads.weight_transfer_out.k.grad is not None
        # the official heads' checkpoint round trip
        state = model.state_dict()
        other = build_model(cfg)
        other.load_state_dict(state)
        assert torch.equal(other.heads.weight_transfer_out.b0, model.heads.weight_transfer_out.b0)


def test_three_stages(tmp_path):
    from detectron2.data import transforms as T
    from detectron2.structures import Boxes
    from detectron2.utils.events import EventStorage
    from PIL import Image

    from wsis.engine import WSISTrainer
    from wsis.evaluation.pseudo_eval import evaluate_pseudo_masks, mark_all_valid

    val_json, val_images = _subset(tmp_path, "val", 3)
    train_json, train_images = _subset(tmp_path, "train", 4)
    _register("boxcaseg_test_val", val_json, val_images, "mask")
    _register("boxcaseg_test_train_box", train_json, train_images, "box")

    # stage 1: joint training on box crops + ECSSD salient crops, evaluated by the proxy masks of val boxes
    out1 = tmp_path / "stage1"
    cfg = _cfg(BOXCASEG, ["SOLVER.MAX_ITER", "3", "DATASETS.TEST", "('boxcaseg_test_val',)", "OUTPUT_DIR", str(out1)])
    trainer = WSISTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    res = trainer.test(cfg, trainer.model)["proxy_masks"]
    weights = out1 / "model_final.pth"
    assert weights.is_file()
    val = DatasetCatalog.get("boxcaseg_test_val")
    assert res["num_instances"] == sum(not a["iscrowd"] for d in val for a in d["annotations"])

    # stage 2: proxy masks of the training boxes into the store; identical with 1 and 2 workers
    tool = load_tool("make_pseudo_masks")
    common = ["--method", "boxcaseg", "--config-file", BOXCASEG, "--no-progress", "--num-vis", "1",
              "--json", train_json, "--images", train_images]
    weights_opt = ["MODEL.WEIGHTS", str(weights)]
    metrics = tool.main([*common, "--out", str(tmp_path / "p2"), "--workers", "2", *weights_opt])
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the generator runs with 1 thread in this process and must give the caller's count back
    try:
        tool.main([*common, "--out", str(tmp_path / "p1"), "--workers", "1", *weights_opt])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    store = tmp_path / "p2" / "pseudo_masks.json"
    single = store.read_bytes()
    assert single == (tmp_path / "p1" / "pseudo_masks.json").read_bytes()
    # scale-out: 2 shards merged, and one process per "device" under launch (2 CPU processes, gloo), give the
    # same bytes as one run; the deprecated wsis 0.1 command too
    shards = []
    for i in range(2):
        tool.main([*common, "--out", str(tmp_path / f"s{i}"), "--workers", "1", "--num-shards", "2",
                   "--shard-index", str(i), *weights_opt])
        shards.append(str(tmp_path / f"s{i}" / "pseudo_masks.json"))
    assert all(open(f, "rb").read() != single for f in shards)
    tool.main(["--merge", *shards, "--out", str(tmp_path / "merged.json")])
    assert (tmp_path / "merged.json").read_bytes() == single
    tool.main([*common, "--out", str(tmp_path / "launched"), "--workers", "1", "--num-gpus", "2", *weights_opt])
    assert (tmp_path / "launched" / "pseudo_masks.json").read_bytes() == single
    launched = json.loads((tmp_path / "launched" / "metrics.json").read_text())
    assert launched["num_images"] == 4 and launched["all/mean_iou"] == metrics["all/mean_iou"]
    load_tool("make_proxy_masks").main(["--config-file", BOXCASEG, "--weights", str(weights), "--no-progress",
                                        "--json", train_json, "--images", train_images, "--out", str(tmp_path / "old"),
                                        "--workers", "1"])
    assert (tmp_path / "old" / "pseudo_masks.json").read_bytes() == single
    provenance, records = load_pseudo_masks(str(store))
    assert metrics["num_images"] == 4 and provenance["method"] == "boxcaseg"
    gt = {a["id"]: a for d in DatasetCatalog.get("boxcaseg_test_train_box") for a in d["annotations"]}
    for rec in records.values():
        for inst in rec["instances"]:
            m = decode_mask(inst["segmentation"])
            x0, y0, x1, y1 = annotation_extent(gt[inst["annotation_id"]], *m.shape)
            outside = m.copy()
            outside[y0:y1, x0:x1] = False
            assert not outside.any(), "a proxy mask stays inside its box"
            assert 0.0 <= inst["score"] <= 1.0 and inst["valid"] == (inst["score"] > 0.95 and m.any())
    # the evaluator of stage 1 and the generator of stage 2 make the same masks: the val store scores what test() said
    tool.main(["--method", "boxcaseg", "--config-file", BOXCASEG, "--no-progress", "--json", val_json, "--images",
               val_images, "--out", str(tmp_path / "pv"), "--workers", "1", *weights_opt])
    _, val_records = load_pseudo_masks(str(tmp_path / "pv" / "pseudo_masks.json"))
    direct = evaluate_pseudo_masks(mark_all_valid(val_records), val)
    assert res["all/mean_iou"] == pytest.approx(direct["mean_iou"])

    # stage 3: Proxy Mask R-CNN reads the store through the weak mapper and the valid-mask head. A store with some
    # dropped masks: the kept ones give mask loss (and gradient) through the head, the dropped ones none.
    n_valid = sum(i["valid"] for r in records.values() for i in r["instances"])
    if n_valid in (0, sum(len(r["instances"]) for r in records.values())):  # a 3-iteration model: force a mix
        forced = tmp_path / "forced.json"
        _rewrite_validity(store, forced)
        store = forced
    _, records = load_pseudo_masks(str(store))
    cfg = _cfg(PROXY_RCNN, ["SOLVER.MAX_ITER", "2", "DATASETS.TRAIN", "('boxcaseg_test_train_box',)",
                            "DATASETS.TEST", "()", "WSIS.DATA.PSEUDO_MASKS", f"('{store}',)",
                            "OUTPUT_DIR", str(tmp_path / "stage3"), "DATALOADER.NUM_WORKERS", "0",
                            "INPUT.MIN_SIZE_TRAIN", "(200,)", "INPUT.MAX_SIZE_TRAIN", "400", "INPUT.RANDOM_FLIP", "none"])
    trainer = WSISTrainer(cfg)
    batch = next(iter(trainer.build_train_loader(cfg)))
    head = trainer.model.roi_heads.mask_head.train()
    by_ann = {i["annotation_id"]: i for r in records.values() for i in r["instances"]}
    for x in batch:
        inst = x["instances"]
        rec = records[x["image_id"]]
        assert len(inst) == len(rec["instances"])
        for j, pseudo in enumerate(rec["instances"]):
            assert bool(inst.gt_mask_valid[j]) == pseudo["valid"]
            if pseudo["valid"]:  # exactly the store's mask, resized with the image
                m = decode_mask(by_ann[pseudo["annotation_id"]]["segmentation"]).astype(np.uint8)
                resize = T.ResizeTransform(m.shape[0], m.shape[1], *inst.image_size, Image.BILINEAR)
                assert np.array_equal(resize.apply_segmentation(m) > 0, inst.gt_masks.tensor[j].numpy())
        inst.proposal_boxes = Boxes(inst.gt_boxes.tensor.clone())
        feats = torch.randn(len(inst), head.mask_fcn1.in_channels, 14, 14, requires_grad=True)
        with EventStorage():
            loss = head(feats, [inst])["loss_mask"]
        if bool(inst.gt_mask_valid.any()):
            assert loss.item() > 0
            grad = torch.autograd.grad(loss, feats)[0].flatten(1).abs().sum(1)
            assert ((grad > 0) == inst.gt_mask_valid).all(), "mask loss from the kept masks only"
        else:
            assert loss.item() == 0
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert np.isfinite(trainer.storage.history("loss_mask").latest())


def _rewrite_validity(src, dst):
    """A copy of a store in which every other instance is valid (non-empty masks only)."""
    data = json.load(open(src))
    k = 0
    for image in data["images"]:
        for inst in image["instances"]:
            nonempty = decode_mask(inst["segmentation"]).any()
            inst["valid"] = bool(nonempty and k % 2 == 0)
            k += nonempty
    json.dump(data, open(dst, "w"))


def test_any_registered_backbone_hrnet_style():
    """An HRNet-style backbone (four parallel branches at strides 4-32) registered by another project plugs in."""
    import torch
    from detectron2.layers import ShapeSpec
    from detectron2.modeling import BACKBONE_REGISTRY, Backbone, build_model

    if "ToyHRNetForTest" not in BACKBONE_REGISTRY:

        @BACKBONE_REGISTRY.register()
        class ToyHRNetForTest(Backbone):
            def __init__(self, cfg, input_shape):
                super().__init__()
                self.stem = torch.nn.Conv2d(3, 8, 3, stride=4, padding=1)
                self._out_feature_strides = {f"hr{i}": 4 * 2 ** i for i in range(4)}
                self._out_feature_channels = {f"hr{i}": 8 * (i + 1) for i in range(4)}
                self.branches = torch.nn.ModuleList(torch.nn.Conv2d(8, 8 * (i + 1), 1) for i in range(4))

            def forward(self, x):
                x = self.stem(x)
                return {f"hr{i}": b(torch.nn.functional.avg_pool2d(x, 2 ** i)) for i, b in enumerate(self.branches)}

            def output_shape(self):
                return {k: ShapeSpec(channels=self._out_feature_channels[k], stride=s)
                        for k, s in self._out_feature_strides.items()}

    cfg = _cfg(BOXCASEG, ["MODEL.BACKBONE.NAME", "ToyHRNetForTest",
                          "MODEL.BOXCASEG.IN_FEATURES", "['hr0', 'hr1', 'hr2', 'hr3']"])
    model = build_model(cfg).eval()
    assert model.fuse.in_channels == 8 + 16 + 24 + 32
    probs = model([{"image": torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8)}])[0]["proxy_probs"]
    assert probs.shape == (2, 64, 64) and 0 <= float(probs.min()) and float(probs.max()) <= 1
    with pytest.raises(ValueError, match="not outputs of the backbone"):
        build_model(_cfg(BOXCASEG, ["MODEL.BACKBONE.NAME", "ToyHRNetForTest"]))


def test_proxy_mask_evaluator_threshold_sweep():
    """A 20x20 box whose fused map falls linearly from left (1) to right (0); the GT mask is the left half."""
    from pycocotools import mask as mask_utils

    from wsis.engine import build_evaluators

    gt_mask = np.zeros((20, 20), dtype=np.uint8)
    gt_mask[:, :10] = 1
    rle = mask_utils.encode(np.asfortranarray(gt_mask))
    rle["counts"] = rle["counts"].decode()
    ann = {"id": 7, "category_id": 1, "bbox": [0.0, 0.0, 20.0, 20.0], "bbox_mode": 1, "segmentation": rle,
           "iscrowd": 0}
    record = {"image_id": 3, "file_name": "x.jpg", "height": 20, "width": 20, "annotations": [ann]}
    name = "boxcaseg_sweep_test"
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
    DatasetCatalog.register(name, lambda: [record])

    cfg = _cfg(BOXCASEG, ["WSIS.BOXCASEG.EVAL_THRESHOLDS", "(0.2, 0.5, 0.8)"])
    evaluator = build_evaluators(cfg, name)
    evaluator.reset()
    ramp = torch.linspace(1.0, 0.0, 20).expand(20, 20)[None]  # normalised value of column x: 1 - x / 19
    evaluator.process([record], [{"proxy_probs": ramp}])
    res = evaluator.evaluate()["proxy_masks"]
    # column x is foreground when 1 - x/19 > t: 16 columns at 0.2, 10 at 0.5, 4 at 0.8
    assert res["sweep/0.2/mean_iou"] == pytest.approx(10 / 16)
    assert res["sweep/0.5/mean_iou"] == pytest.approx(1.0)
    assert res["sweep/0.8/mean_iou"] == pytest.approx(4 / 10)
    assert res["best_threshold"] == 0.5
    assert res["all/mean_iou"] == pytest.approx(1.0)  # PROXY_THRESHOLD 0.5
    # the tight box of the half mask has IoU 0.5 with its box: dropped at 0.95, yet every sweep scores it
    assert res["drop_rate"] == 1.0

    with pytest.raises(ValueError, match="sweep thresholds"):
        build_evaluators(_cfg(BOXCASEG, ["WSIS.BOXCASEG.EVAL_THRESHOLDS", "(1.5,)"]), name)


def test_proxy_generator_takes_checkpoint_urls(tmp_path):
    """``--weights`` may be any iopath URL (detectron2://, https://, a mirror): hashed from its local copy, recorded
    as given, loaded by DetectionCheckpointer. A scheme of this test stands in for detectron2:// (no download)."""
    import hashlib

    from detectron2.modeling import build_model
    from detectron2.utils.file_io import PathManager
    from iopath.common.file_io import PathHandler

    from wsis.methods.boxcaseg.generator import BoxCasegProxyGenerator

    class _Mirror(PathHandler):
        def _get_supported_prefixes(self):
            return ["wsistest-mirror://"]

        def _get_local_path(self, path, **kwargs):
            return str(tmp_path / path[len("wsistest-mirror://"):])

        def _open(self, path, mode="r", **kwargs):
            return open(self._get_local_path(path), mode)

        def _isfile(self, path, **kwargs):
            return os.path.isfile(self._get_local_path(path))

    if "wsistest-mirror://" not in PathManager._path_handlers:
        PathManager.register_handler(_Mirror())
    torch.manual_seed(0)
    model = build_model(_cfg(BOXCASEG, []))
    torch.save({"model": model.state_dict()}, tmp_path / "boxcaseg.pth")
    gen = BoxCasegProxyGenerator(BOXCASEG, [], "wsistest-mirror://boxcaseg.pth")
    assert gen.params["weights"] == "wsistest-mirror://boxcaseg.pth"
    assert gen.params["weights_sha256"] == hashlib.sha256((tmp_path / "boxcaseg.pth").read_bytes()).hexdigest()
    d = DatasetCatalog.get("coco_tiny_val")[0] if "coco_tiny_val" in DatasetCatalog.list() else None
    if d is not None and os.path.isfile(d["file_name"]):
        rec = gen(d)
        assert len(rec["instances"]) == sum(not a["iscrowd"] for a in d["annotations"])
    with pytest.raises(FileNotFoundError, match="MODEL.WEIGHTS wsistest-mirror://missing.pth"):
        BoxCasegProxyGenerator(BOXCASEG, [], "wsistest-mirror://missing.pth")


def test_proxy_inputs_honour_bbox_mode():
    from wsis.methods.boxcaseg.mapper import BoxCasegCropMapper

    mapper = BoxCasegCropMapper(_cfg(BOXCASEG, []), is_train=False)  # (registers the builtin datasets)
    d = DatasetCatalog.get("coco_tiny_val")[0]
    if not os.path.isfile(d["file_name"]):
        pytest.skip("shared data not found")
    xyxy = dict(d, annotations=[dict(a, bbox=[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                                              a["bbox"][1] + a["bbox"][3]], bbox_mode=0) for a in d["annotations"]])
    assert torch.equal(mapper(xyxy)["image"], mapper(d)["image"])
