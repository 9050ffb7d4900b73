"""ProxyMaskRCNNConvUpsampleHead: registered, builds from config, skips invalid masks and ignored pixels."""
import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.config import get_cfg  # noqa: E402
from detectron2.layers import ShapeSpec  # noqa: E402
from detectron2.modeling.roi_heads.mask_head import ROI_MASK_HEAD_REGISTRY, build_mask_head  # noqa: E402
from detectron2.structures import BitMasks, Boxes, Instances  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

import wsis.modeling  # noqa: E402,F401
from wsis.config import add_wsis_config  # noqa: E402
from wsis.methods.proxy_mask_rcnn.losses import weak_mask_targets  # noqa: E402
from wsis.core.fields import PerImageField  # noqa: E402


def _cfg(agnostic=False):
    cfg = add_wsis_config(get_cfg())
    cfg.MODEL.ROI_MASK_HEAD.NAME = "ProxyMaskRCNNConvUpsampleHead"
    cfg.MODEL.ROI_MASK_HEAD.NUM_CONV = 1
    cfg.MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK = agnostic
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    return cfg


def _instances(valid, with_masks=True, ignore=None):
    inst = Instances((20, 20))
    n = len(valid)
    inst.proposal_boxes = Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0]] * n))
    inst.gt_classes = torch.arange(n) % 3
    if with_masks:
        m = torch.zeros(n, 20, 20, dtype=torch.bool)
        m[:, 0:5, :] = True  # top half of each proposal
        inst.gt_masks = BitMasks(m)
        inst.gt_mask_valid = torch.tensor(valid)
    if ignore is not None:
        inst.gt_ignore = PerImageField(ignore, n)
    return inst


def test_registered_and_built_from_config():
    assert "ProxyMaskRCNNConvUpsampleHead" in ROI_MASK_HEAD_REGISTRY._obj_map
    head = build_mask_head(_cfg(), ShapeSpec(channels=8, width=14, height=14))
    assert type(head).__name__ == "ProxyMaskRCNNConvUpsampleHead"
    assert head.loss_normalization == "pixels"


def test_targets_valid_and_ignore():
    ignore = torch.zeros(20, 20, dtype=torch.bool)
    ignore[:, 5:10] = True  # right half of the proposal box
    classes, masks, valid, ign = weak_mask_targets([_instances([True, False], ignore=ignore), _instances([True], False)], 4)
    assert masks.shape == (3, 4, 4) and valid.tolist() == [True, False, False]
    assert masks[0, :2].min() > 0.9 and masks[0, 2:].max() < 0.1
    assert ign[0, :, 2:].all() and not ign[0, :, :2].any() and not ign[2].any()


@pytest.mark.parametrize("agnostic", [False, True])
def test_forward_loss_skips_invalid(agnostic):
    torch.manual_seed(0)
    head = build_mask_head(_cfg(agnostic), ShapeSpec(channels=8, width=14, height=14))
    head.train()
    x = torch.randn(3, 8, 14, 14, requires_grad=True)
    with EventStorage() as storage:
        loss = head(x, [_instances([True, False, True])])["loss_mask"]
        assert loss.item() > 0
        loss.backward()
        # the invalid proposal's features get no gradient through the mask loss
        assert x.grad[1].abs().sum() == 0 and x.grad[0].abs().sum() > 0
        assert storage.latest()["mask_rcnn/num_valid"][0] == 2


def test_box_only_batch_gives_zero_loss_with_graph():
    head = build_mask_head(_cfg(), ShapeSpec(channels=8, width=14, height=14))
    head.train()
    x = torch.randn(2, 8, 14, 14, requires_grad=True)
    with EventStorage():
        loss = head(x, [_instances([False, False], with_masks=False)])["loss_mask"]
    assert loss.item() == 0 and loss.requires_grad
    loss.backward()


def test_empty_batch_and_inference():
    head = build_mask_head(_cfg(), ShapeSpec(channels=8, width=14, height=14))
    head.train()
    with EventStorage():
        loss = head(torch.zeros(0, 8, 14, 14, requires_grad=True), [_instances([])])["loss_mask"]
    assert loss.item() == 0 and loss.requires_grad
    head.eval()
    inst = Instances((20, 20))
    inst.pred_classes = torch.tensor([2])
    inst.pred_boxes = Boxes(torch.tensor([[0.0, 0.0, 5.0, 5.0]]))
    out = head(torch.randn(1, 8, 14, 14), [inst])
    assert out[0].pred_masks.shape == (1, 1, 28, 28)
