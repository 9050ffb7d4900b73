"""DSRG with a real detectron2: seeds from a real cue store (tools/make_semantic_labels.py WSIS.CAM.LABELS dsrg),
DSRGHead under DSRGSemanticSegmentor growing them while it trains, SemSegEvaluator, the final labels, and the head
under detectron2's own SemanticSegmentor."""
import json
import math
import os

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.config import get_cfg  # noqa: E402
from detectron2.data import DatasetCatalog  # noqa: E402

from wsis.config import add_wsis_config  # noqa: E402

from conftest import REPO  # noqa: E402
from tag_helpers import _register_sem_gt, _tag_data, _trained_classifier  # noqa: E402

DSRG_CFG = os.path.join(REPO, "projects", "DSRG", "configs", "dsrg_R18_scratch_copy_paste.yaml")


def _dsrg_cfg(tmp_path, seeds, opts=()):
    import wsis.modeling  # noqa: F401

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(DSRG_CFG)
    cfg.merge_from_list(["MODEL.SEM_SEG_HEAD.NUM_CLASSES", "3", "DATASETS.TRAIN", "('cam_test_tag',)",
                         "DATASETS.TEST", "('cam_test_sem_seg',)", "WSIS.DATA.SEMANTIC_LABELS", f"('{seeds}',)",
                         "SOLVER.IMS_PER_BATCH", "4", "SOLVER.MAX_ITER", "3", "INPUT.MIN_SIZE_TRAIN", "(64,)",
                         "INPUT.MAX_SIZE_TRAIN", "64", "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "64",
                         "MODEL.RESNETS.OUT_FEATURES", "['res3']", "MODEL.SEM_SEG_HEAD.IN_FEATURES", "['res3']",
                         "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", str(tmp_path / "dsrg"), "SEED", "0", *opts])
    return cfg


@pytest.fixture
def seeds(tmp_path):
    """DSRG seeds of the tag set made by the project's commands from a briefly trained classifier's cues."""
    from wsis.cli import make_cues, make_semantic_labels

    json_file, images = _tag_data(tmp_path)
    _register_sem_gt(tmp_path)
    config, weights = _trained_classifier(tmp_path)
    base = ["--json", json_file, "--images", images, "--no-progress", "--workers", "1"]
    make_cues.main(base + ["--config-file", config, "--out", str(tmp_path / "cues"), "MODEL.WEIGHTS", weights,
                           "MODEL.CAM.SCALES", "(1.0,)"])
    out = tmp_path / "seeds"
    metrics = make_semantic_labels.main(base + ["--cues", str(tmp_path / "cues"), "--out", str(out),
                                               "WSIS.CAM.LABELS", "dsrg", "WSIS.DSRG.SEEDS.BG_THRESHOLD", "0.1"])
    params = json.load(open(out / "params.json"))
    assert params["labels"]["method"] == "dsrg" and params["labels"]["fg_threshold"] == 0.2
    assert metrics["num_images"] == 8 and 0 <= metrics["fg_precision"] <= 1
    assert (cv2.imread(str(out / "8.png"), cv2.IMREAD_UNCHANGED) == 0).all()  # untagged: all background
    return json_file, images, str(out)


def test_dsrg_trains_with_growing_and_is_evaluated(seeds, tmp_path):
    from detectron2.modeling import build_model
    from detectron2.utils.events import EventStorage

    from wsis.engine import WSISTrainer

    json_file, images, seed_dir = seeds
    cfg = _dsrg_cfg(tmp_path, seed_dir)
    torch.manual_seed(0)
    model = build_model(cfg)
    assert type(model).__name__ == "DSRGSemanticSegmentor" and type(model.sem_seg_head).__name__ == "DSRGHead"
    batch = next(iter(WSISTrainer.build_train_loader(cfg)))
    with EventStorage(0) as storage:
        losses = model(batch)
        seeded, labelled = storage.latest()["dsrg/seeded"][0], storage.latest()["dsrg/labelled"][0]
    assert set(losses) == {"loss_seed_bg", "loss_seed_fg", "loss_constrain"}
    assert all(math.isfinite(float(v)) for v in losses.values())
    assert labelled >= seeded > 0
    assert model.sem_seg_head.batch_images is None  # the batch context does not outlive the forward
    # tags reach the head: a tag the head cannot hold is a clear error naming the image
    bad = [dict(x, image_labels=[5]) for x in batch]
    with pytest.raises(ValueError, match="image id"):
        model(bad)
    # every pixel unlabelled: zero losses, not NaN
    for x in batch:
        x["sem_seg"] = torch.full_like(x["sem_seg"], 255)
    with EventStorage(0):
        zero = model(batch)
    assert float(zero["loss_seed_bg"]) == 0.0 and float(zero["loss_seed_fg"]) == 0.0
    # the whole path through the trainer (growing every iteration), evaluated by SemSegEvaluator
    trainer = WSISTrainer(cfg)
    trainer.train()
    res = WSISTrainer.test(cfg, trainer.model)
    assert 0 <= res["sem_seg"]["mIoU"] <= 100
    # the head's final labels as semantic pseudo-label PNGs, resumable, refused for another checkpoint
    from wsis.cli import make_dsrg_labels

    weights = os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
    cfg_file = tmp_path / "dsrg.yaml"
    cfg_file.write_text(cfg.dump())
    out = tmp_path / "final"
    args = ["--config-file", str(cfg_file), "--json", json_file, "--images", images, "--out", str(out),
            "--no-progress", "MODEL.WEIGHTS", weights]
    metrics = make_dsrg_labels.main(args)
    assert metrics["num_images"] == 8 and 0 <= metrics["miou"] <= 1 and metrics["fraction_ignored"] == 0
    for d in DatasetCatalog.get("cam_test_tag"):
        lab = cv2.imread(str(out / f"{d['image_id']}.png"), cv2.IMREAD_UNCHANGED)
        assert lab.shape == (64, 64) and set(np.unique(lab)) <= {0} | {c + 1 for c in d["image_labels"]}
    first = open(out / "1.png", "rb").read()
    os.remove(out / "1.png")
    make_dsrg_labels.main(args)
    assert open(out / "1.png", "rb").read() == first
    # two shards into one folder, then the metrics of a last run: the single run's files
    sharded = [a if a != str(out) else str(tmp_path / "sharded") for a in args]
    for i in (0, 1):
        make_dsrg_labels.main(sharded[:-2] + ["--num-shards", "2", "--shard-index", str(i)] + sharded[-2:])
    assert make_dsrg_labels.main(sharded) == metrics
    for d in DatasetCatalog.get("cam_test_tag"):
        name = f"{d['image_id']}.png"
        assert open(out / name, "rb").read() == open(tmp_path / "sharded" / name, "rb").read()
    # the grown labels: every seed kept, unlabelled pixels stay 255
    grown = tmp_path / "grown"
    make_dsrg_labels.main(["--config-file", str(cfg_file), "--json", json_file, "--images", images, "--out", str(grown),
                           "--no-progress", "--grown-from", seed_dir, "MODEL.WEIGHTS", weights])
    for d in DatasetCatalog.get("cam_test_tag"):
        s = cv2.imread(os.path.join(seed_dir, f"{d['image_id']}.png"), cv2.IMREAD_UNCHANGED)
        g = cv2.imread(str(grown / f"{d['image_id']}.png"), cv2.IMREAD_UNCHANGED)
        assert (g[s != 255] == s[s != 255]).all() and (g != 255).sum() >= (s != 255).sum()
    other = tmp_path / "other.pth"
    torch.save(torch.load(weights, weights_only=False), other)
    with open(other, "ab") as f:
        f.write(b"x")
    with pytest.raises(SystemExit, match="another checkpoint"):
        make_dsrg_labels.main(args[:-1] + [str(other)])


def test_fixed_seeds_bfs_and_plain_semantic_segmentor(seeds, tmp_path):
    from detectron2.modeling import build_model
    from detectron2.utils.events import EventStorage

    from wsis.engine import WSISTrainer

    _, _, seed_dir = seeds
    for growing in ("none", "bfs"):
        cfg = _dsrg_cfg(tmp_path, seed_dir, ["MODEL.DSRG.GROWING", growing])
        model = build_model(cfg)
        batch = next(iter(WSISTrainer.build_train_loader(cfg)))
        with EventStorage(0) as storage:
            losses = model(batch)
        assert all(math.isfinite(float(v)) for v in losses.values())
        if growing == "none":
            assert storage.latest()["dsrg/labelled"][0] == storage.latest()["dsrg/seeded"][0]
    # detectron2's SemanticSegmentor: no images for the CRF → refused at build, with the way out
    cfg = _dsrg_cfg(tmp_path, seed_dir, ["MODEL.META_ARCHITECTURE", "SemanticSegmentor"])
    with pytest.raises(ValueError, match="CONSTRAIN_WEIGHT 0.0"):
        build_model(cfg)
    cfg = _dsrg_cfg(tmp_path, seed_dir, ["MODEL.META_ARCHITECTURE", "SemanticSegmentor",
                                         "MODEL.DSRG.CONSTRAIN_WEIGHT", "0.0", "MODEL.DSRG.GROW_ON_CRF", "False"])
    model = build_model(cfg)
    with EventStorage(0):
        losses = model(next(iter(WSISTrainer.build_train_loader(cfg))))
    assert set(losses) == {"loss_seed_bg", "loss_seed_fg"}
    # the retraining stage: cross-entropy on dense labels
    cfg = _dsrg_cfg(tmp_path, seed_dir, ["MODEL.DSRG.TARGETS", "labels"])
    model = build_model(cfg)
    with EventStorage(0):
        losses = model(next(iter(WSISTrainer.build_train_loader(cfg))))
    assert set(losses) == {"loss_sem_seg"} and math.isfinite(float(losses["loss_sem_seg"]))
