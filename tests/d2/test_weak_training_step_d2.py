"""One Mask R-CNN training step on box-only and on mixed (semi-supervised) data, through the trainer's data path.

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
from wsis.data.build import get_weak_train_dicts  # noqa: E402
from wsis.data.mapper import WeakDatasetMapper  # noqa: E402
import wsis.modeling  # noqa: E402,F401  (registers the datasets and heads)

from conftest import REPO, SHARED_DATA  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, "coco_tiny")), reason="no shared data")


def _cfg(train):
    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(os.path.join(REPO, "configs", "quick_schedules", "proxy_mask_rcnn_coco_tiny_instant_test.yaml"))
    cfg.DATASETS.TRAIN = (train,)
    cfg.WSIS.DATA.PSEUDO_MASKS = ()
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    return cfg


def _batch(cfg, masked, box_only):
    """The trainer's data path (get_weak_train_dicts + WeakDatasetMapper) on a chosen set of images: ``masked``
    images whose instances all have masks and ``box_only`` images without any, whatever the sampler's seed."""
    dicts = get_weak_train_dicts(cfg)
    with_masks = [d for d in dicts if any(a["mask_valid"] for a in d["annotations"])]
    without = [d for d in dicts if d["annotations"] and not any(a["mask_valid"] for a in d["annotations"])]
    assert len(with_masks) >= masked and len(without) >= box_only
    mapper = WeakDatasetMapper(cfg, is_train=True)
    return [mapper(d) for d in with_masks[:masked] + without[:box_only]]


@pytest.mark.parametrize("train,masked,box_only", [("coco_tiny_train_box", 0, 4), ("coco_tiny_train_semi50", 2, 2)])
def test_training_step(train, masked, box_only):
    torch.manual_seed(0)
    cfg = _cfg(train)
    model = build_model(cfg)
    model.train()
    batch = _batch(cfg, masked, box_only)
    assert [bool(x["instances"].gt_mask_valid.any()) for x in batch] == [True] * masked + [False] * box_only
    with EventStorage() as storage:
        losses = model(batch)
        total = sum(losses.values())
        total.backward()
        n_valid = storage.latest()["mask_rcnn/num_valid"][0]
    assert torch.isfinite(total)
    if masked:
        assert losses["loss_mask"].item() > 0 and n_valid > 0
    else:
        assert losses["loss_mask"].item() == 0 and n_valid == 0
        assert all(p.grad is None or not p.grad.any() for p in model.roi_heads.mask_head.parameters())
