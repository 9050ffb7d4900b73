"""WSISTrainer's checkpoints describe their training run; a checkpoint written by an older wsis (d933622, before
descriptions) resumes unchanged; resuming on other weak labels is logged."""
import logging
import os
import shutil

import numpy as np
import pytest

pytest.importorskip("detectron2")

import torch  # noqa: E402
from detectron2.config import get_cfg  # noqa: E402

import wsis.modeling  # noqa: E402,F401
from wsis.checkpoint import KEY, read_description  # noqa: E402
from wsis.cli.describe_checkpoint import main as describe  # noqa: E402
from wsis.config import add_wsis_config  # noqa: E402
from wsis.core.masks import encode_mask  # noqa: E402
from wsis.data.pseudo_store import PseudoMaskWriter, make_provenance  # noqa: E402
from wsis.engine import WSISTrainer  # noqa: E402
from wsis.engine.checkpoint import TrainingDescription  # noqa: E402

from conftest import COCO_TINY, REPO  # noqa: E402

FIXTURE = os.path.join(REPO, "tests", "fixtures", "cam_tiny_d933622")
pytestmark = pytest.mark.skipif(not os.path.isdir(COCO_TINY), reason="no shared data")


def _cfg(out, max_iter):
    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(os.path.join(FIXTURE, "train.yaml"))
    cfg.OUTPUT_DIR, cfg.SOLVER.MAX_ITER = str(out), max_iter
    return cfg


def test_an_older_checkpoint_resumes_and_the_next_one_describes_the_run(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(os.path.join(FIXTURE, "model_final.pth"), out / "model_final.pth")
    (out / "last_checkpoint").write_text("model_final.pth")
    old = torch.load(out / "model_final.pth", map_location="cpu", weights_only=False)
    assert KEY not in old and old["iteration"] == 1

    trainer = WSISTrainer(_cfg(out, 4))
    trainer.resume_or_load(resume=True)
    assert trainer.start_iter == 2 and trainer.checkpointer.checkpointables[KEY].loaded is None
    state = trainer.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in old["model"].items())  # the old weights, all of them
    trainer.train()

    desc = read_description(out / "model_final.pth")
    assert desc["meta_architecture"] == "CAMClassifier" and desc["weak_labels"] == []
    (train,) = desc["datasets"]["train"]
    assert train["name"] == "coco_tiny_train_tag"
    assert os.path.samefile(train["json_file"], os.path.join(COCO_TINY, "annotations", "instances_train2017.json"))
    assert "MAX_ITER: 4" in desc["config"]
    assert describe([str(out / "model_final.pth")]) == 0 and "train dataset: coco_tiny_train_tag" in \
        capsys.readouterr().out

    again = WSISTrainer(_cfg(out, 5))
    again.resume_or_load(resume=True)
    assert again.start_iter == 4 and again.checkpointer.checkpointables[KEY].loaded == desc


def _store(path, iters):
    record = {"image_id": 7, "height": 4, "width": 5, "ignore": None,
              "instances": [{"annotation_id": 1, "category_id": 0, "bbox": [0.0, 0.0, 2.0, 2.0],
                             "segmentation": encode_mask(np.ones((4, 5), bool)), "valid": True, "ignore": None,
                             "score": 1.0}]}
    with PseudoMaskWriter(str(path), make_provenance("grabcut", {"iters": iters}, source="a.json",
                                                     source_hash="h"), overwrite=True) as w:
        w.add(record)
    return str(path)


def test_resuming_on_other_weak_labels_is_logged(tmp_path, caplog):
    cfg = _cfg(tmp_path, 1)
    cfg.WSIS.DATA.PSEUDO_MASKS = (_store(tmp_path / "p.json", 5),)
    saved = TrainingDescription(cfg).state_dict()
    same = TrainingDescription(cfg)
    with caplog.at_level(logging.WARNING, logger="wsis.engine"):
        same.load_state_dict(saved)
    assert "other weak labels" not in caplog.text and same.loaded == saved
    _store(tmp_path / "p.json", 6)
    changed = TrainingDescription(cfg)
    with caplog.at_level(logging.WARNING, logger="wsis.engine"):
        changed.load_state_dict(saved)
    assert "other weak labels" in caplog.text and str(tmp_path / "p.json") in caplog.text
    assert changed.state_dict()["weak_labels"][0]["provenance"]["params"] == {"iters": 6}  # this run's
