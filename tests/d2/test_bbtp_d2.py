"""BBTP / BoxInst head and the CRF meta-architecture with a real detectron2, on coco_tiny."""
import copy
import os

import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.config import get_cfg  # noqa: E402
from detectron2.data import DatasetCatalog, build_detection_test_loader  # noqa: E402
from detectron2.evaluation import inference_on_dataset  # noqa: E402
from detectron2.layers import ShapeSpec  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402
from detectron2.modeling.roi_heads.mask_head import build_mask_head  # noqa: E402
from detectron2.structures import BitMasks, Boxes, Instances  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

from wsis.config import add_wsis_config  # noqa: E402
from wsis.data.mapper import WeakDatasetMapper  # noqa: E402
from wsis.engine import WSISTrainer  # noqa: E402
from wsis.evaluation.evaluators import InstanceAPrEvaluator  # noqa: E402
from wsis.layers import DenseCRFParams  # noqa: E402

from conftest import REPO, SHARED_DATA  # noqa: E402

CONFIG = os.path.join(REPO, "projects", "BBTP", "configs", "bbtp_coco_tiny_instant_test.yaml")
needs_data = pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, "coco_tiny")), reason="no shared data")


def _cfg(**over):
    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(CONFIG)
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.SOLVER.IMS_PER_BATCH = 2
    cfg.SEED = 3
    for k, v in over.items():
        cfg.merge_from_list([k, v])
    return cfg


def _head_inputs(valid):
    inst = Instances((32, 32))
    n = len(valid)
    inst.proposal_boxes = Boxes(torch.tensor([[0.0, 0.0, 16.0, 16.0]] * n))
    inst.gt_boxes = Boxes(torch.tensor([[0.0, 0.0, 8.0, 16.0]] * n))  # left half of each proposal
    inst.gt_classes = torch.zeros(n, dtype=torch.long)
    m = torch.zeros(n, 32, 32, dtype=torch.bool)
    m[:, :16, :8] = True
    inst.gt_masks = BitMasks(m)
    inst.gt_mask_valid = torch.tensor(valid)
    return inst


@pytest.mark.parametrize("agnostic", [False, True])
@pytest.mark.parametrize("loss", ["mil", "boxinst"])
def test_mixed_batch_losses_and_gradients(loss, agnostic):
    cfg = _cfg(**{"MODEL.ROI_MASK_HEAD.BOX_SUPERVISION.LOSS": loss,
                  "MODEL.ROI_MASK_HEAD.BOX_SUPERVISION.COLOR_WARMUP_ITERS": 0})
    cfg.MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK = agnostic
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 2
    head = build_mask_head(cfg, ShapeSpec(channels=8, width=14, height=14))
    head.train()
    x = torch.randn(3, 8, 14, 14, requires_grad=True)
    inst = _head_inputs([True, False, False])
    if loss == "boxinst":
        from wsis.modeling.losses.box_supervised import rgb_to_lab
        from wsis.structures import PerImageField

        img = torch.zeros(3, 32, 32, dtype=torch.uint8)
        img[0, :, :8] = 255  # a red left half: colour edges at the box border
        inst.gt_image_lab = PerImageField(rgb_to_lab(img), 3)
    with EventStorage() as storage:
        losses = head(x, [inst])
        keys = {"mil": {"loss_mil", "loss_mil_pairwise"}, "boxinst": {"loss_projection", "loss_color_pairwise"}}
        assert set(losses) == {"loss_mask"} | keys[loss]
        assert all(torch.isfinite(v) and v.item() > 0 for v in losses.values())
        assert storage.latest()["mask_rcnn/num_box_only"][0] == 2
    # only the valid instance feeds loss_mask; only the box-only ones feed the box losses
    g_mask = torch.autograd.grad(losses["loss_mask"], x, retain_graph=True)[0]
    assert g_mask[0].abs().sum() > 0 and g_mask[1:].abs().sum() == 0
    box_key = "loss_mil" if loss == "mil" else "loss_projection"
    g_box = torch.autograd.grad(losses[box_key], x)[0]
    assert g_box[0].abs().sum() == 0 and g_box[1:].abs().sum() > 0


def test_box_only_without_masks_and_empty():
    cfg = _cfg()
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 2
    head = build_mask_head(cfg, ShapeSpec(channels=8, width=14, height=14))
    head.train()
    inst = _head_inputs([False, False])
    inst.remove("gt_masks")
    inst.remove("gt_mask_valid")
    with EventStorage():
        losses = head(torch.randn(2, 8, 14, 14), [inst])
        assert losses["loss_mask"].item() == 0 and losses["loss_mil"].item() > 0
        empty = head(torch.zeros(0, 8, 14, 14, requires_grad=True), [_head_inputs([])])
    assert all(v.item() == 0 and v.requires_grad for v in empty.values())


@needs_data
def test_few_iterations_decrease_loss_on_coco_tiny_boxes():
    torch.manual_seed(0)
    cfg = _cfg()
    model = build_model(cfg)
    model.train()
    batch = next(iter(WSISTrainer.build_train_loader(cfg)))
    opt = torch.optim.SGD(model.parameters(), lr=0.002, momentum=0.9)
    totals, mil = [], []
    with EventStorage() as storage:
        for it in range(12):
            storage.iter = it
            losses = model(copy.deepcopy(batch))
            total = sum(losses.values())
            opt.zero_grad()
            total.backward()
            opt.step()
            totals.append(total.item())
            mil.append(losses["loss_mil"].item())
    assert sum(totals[-3:]) < sum(totals[:3]), totals
    assert sum(mil[-3:]) < sum(mil[:3]), mil


@needs_data
def test_inference_with_crf_and_apr():
    cfg = _cfg(**{"MODEL.ROI_HEADS.SCORE_THRESH_TEST": "0.0", "TEST.DETECTIONS_PER_IMAGE": "5"})
    model = build_model(cfg)
    model.eval()
    assert model.crf_enabled
    dicts = DatasetCatalog.get("coco_tiny_val")[:3]
    loader = build_detection_test_loader(dicts, mapper=WeakDatasetMapper(cfg, is_train=False))
    ev = InstanceAPrEvaluator("coco_tiny_val")
    res = inference_on_dataset(model, loader, ev)["segm_APr"]
    assert {"AP^r@0.5", "AP^r_vol"} <= set(res)
    with torch.no_grad():
        out = model([WeakDatasetMapper(cfg, is_train=False)(dicts[0])])[0]["instances"]
    assert out.pred_masks.dtype == torch.bool and out.pred_masks.shape[1:] == (dicts[0]["height"], dicts[0]["width"])
    # CRF off: the plain GeneralizedRCNN path, same detections
    model.crf_enabled = False
    with torch.no_grad():
        plain = model([WeakDatasetMapper(cfg, is_train=False)(dicts[0])])[0]["instances"]
    assert torch.equal(plain.pred_boxes.tensor, out.pred_boxes.tensor)
    # zero mean-field iterations return the input marginals: the CRF path then reproduces the plain masks up to the
    # uint8 quantisation of soft pasted masks at 0.5 (an untrained head predicts ~0.5 everywhere, so a few % differ);
    # soft masks really reach the CRF (detector_postprocess alone would binarise them)
    model.crf_enabled = True
    model.crf_params = DenseCRFParams(iterations=0)
    with torch.no_grad():
        zero = model([WeakDatasetMapper(cfg, is_train=False)(dicts[0])])[0]["instances"]
    assert plain.pred_masks.any() and zero.pred_masks.any()
    assert (zero.pred_masks != plain.pred_masks).float().mean() < 0.05
