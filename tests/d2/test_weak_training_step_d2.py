"""One Mask R-CNN training step on box-only and on mixed (semi-supervised) data, through WSISTrainer's loader.

Box-only data with MASK_ON trains (no "Cannot find field gt_masks", detectron2#1650) and gives no mask loss;
mixed data gives mask loss only from its masked instances."""
import os

import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

from wsis.config import add_wsis_config  # noqa: E402
from wsis.engine import WSISTrainer  # noqa: E402

from conftest import REPO, SHARED_DATA  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, "coco_tiny")), reason="no shared data")


def _cfg(train):
    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(os.path.join(REPO, "configs", "quick_schedules", "proxy_mask_rcnn_coco_tiny_instant_test.yaml"))
    cfg.DATASETS.TRAIN = (train,)
    cfg.WSIS.DATA.PSEUDO_MASKS = ()
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.SOLVER.IMS_PER_BATCH = 8
    cfg.SEED = 1  # fixed sampler order: the first batch holds masked images of semi50
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    return cfg


@pytest.mark.parametrize("train,has_mask_loss", [("coco_tiny_train_box", False), ("coco_tiny_train_semi50", True)])
def test_training_step(train, has_mask_loss):
    torch.manual_seed(0)
    cfg = _cfg(train)
    model = build_model(cfg)
    model.train()
    batch = next(iter(WSISTrainer.build_train_loader(cfg)))
    with EventStorage() as storage:
        losses = model(batch)
        total = sum(losses.values())
        total.backward()
        n_valid = storage.latest()["mask_rcnn/num_valid"][0]
    assert torch.isfinite(total)
    if has_mask_loss:
        assert losses["loss_mask"].item() > 0 and n_valid > 0
    else:
        assert losses["loss_mask"].item() == 0 and n_valid == 0
        assert all(not x["instances"].gt_mask_valid.any() for x in batch)
