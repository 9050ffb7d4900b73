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
import wsis.modeling  # noqa: E402,F401  (registers the heads)
from wsis.engine import WSISTrainer  # noqa: E402
from wsis.evaluation.evaluators import InstanceAPrEvaluator  # noqa: E402
from wsis.core.crf import DenseCRFParams  # noqa: E402

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
        from wsis.core.color import rgb_to_lab
        from wsis.core.fields import PerImageField

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


class _FixedLogits(torch.nn.Module):
    """A mask predictor whose output is set: ``+v`` on the left ``frac`` of every 28x28 grid, ``-v`` elsewhere."""

    def __init__(self, num_classes, frac=0.5, v=2.0):
        super().__init__()
        grid = torch.full((28, 28), -v)
        grid[:, : int(round(28 * frac))] = v
        self.register_buffer("grid", grid)
        self.num_classes = num_classes

    def forward(self, x):
        return self.grid.expand(x.shape[0], self.num_classes, 28, 28).clone()


def _two_colour_input(cfg, h=64, w=96, split=36):
    """A BGR image red left of column ``split``, blue right of it, with its one detection: the whole image."""
    from detectron2.structures import Boxes, Instances

    image = torch.zeros(3, h, w, dtype=torch.uint8)
    image[2, :, :split] = 220  # red (BGR channel 2)
    image[0, :, split:] = 220  # blue
    det = Instances((h, w))
    det.pred_boxes = Boxes(torch.tensor([[0.0, 0.0, float(w), float(h)]]))
    det.pred_classes = torch.zeros(1, dtype=torch.long)
    det.scores = torch.ones(1)
    red = torch.zeros(h, w, dtype=torch.bool)
    red[:, :split] = True
    return {"image": image, "height": h, "width": w}, det, red


def _masks(model, inp, det):
    with torch.no_grad():
        return model.inference([inp], detected_instances=[det])[0]["instances"].pred_masks[0]


def _iou(a, b):
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)


def test_crf_path_with_a_set_mask_head():
    cfg = _cfg(**{"MODEL.MASK_CRF.ENABLED": "True"})
    model = build_model(cfg).eval()
    model.roi_heads.mask_head.predictor = _FixedLogits(cfg.MODEL.ROI_HEADS.NUM_CLASSES)
    inp, det, red = _two_colour_input(cfg)
    model.crf_enabled = False
    plain = _masks(model, inp, det)
    assert plain[4:-4, 4:44].all() and not plain[:, 52:].any()  # the head's left half, not the red 36 columns
    # zero mean-field iterations give back the input marginals exactly: the CRF path is then the plain path, up to
    # the pixels whose pasted probability lies within the uint8 quantisation (1/255) of 0.5
    model.crf_enabled, model.crf_params = True, DenseCRFParams(iterations=0)
    zero = _masks(model, inp, det)
    from detectron2.layers.mask_ops import paste_masks_in_image

    soft = paste_masks_in_image(torch.sigmoid(model.roi_heads.mask_head.predictor(torch.zeros(1))[:, 0]),
                                det.pred_boxes, (64, 96), threshold=-1).float()[0] / 255.0
    unsure = (soft - 0.5).abs() <= 1.0 / 255
    assert torch.equal(zero[~unsure], plain[~unsure]) and unsure.float().mean() < 0.05
    # real iterations pull the boundary to the colour edge (DeepLab's kernels)
    model.crf_params = DenseCRFParams()
    refined = _masks(model, inp, det)
    assert _iou(refined, red) > _iou(plain, red) + 0.1, (_iou(refined, red), _iou(plain, red))
    # a process pool gives the serial result, and the model holds no pool: it deep-copies (EMA, model averaging)
    model.crf_num_workers = 2
    assert torch.equal(_masks(model, inp, det), refined)
    clone = copy.deepcopy(model)
    assert not any(isinstance(v, __import__("concurrent.futures").futures.Executor) for v in vars(clone).values())
    assert torch.equal(_masks(clone, inp, det), refined)


def test_dense_crf_zero_iterations_returns_the_input_exactly():
    import numpy as np

    from wsis.core.crf import dense_crf

    rng = np.random.default_rng(0)
    probs = rng.random((3, 5, 7)).astype(np.float32)
    probs /= probs.sum(0, keepdims=True)
    image = rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(dense_crf(image, probs, DenseCRFParams(iterations=0)), probs)


@needs_data
def test_inference_through_the_evaluator_with_and_without_crf():
    cfg = _cfg(**{"MODEL.ROI_HEADS.SCORE_THRESH_TEST": "0.0", "TEST.DETECTIONS_PER_IMAGE": "5",
                  "MODEL.MASK_CRF.ENABLED": "True", "MODEL.MASK_CRF.ITERATIONS": "2"})
    model = build_model(cfg)
    model.eval()
    dicts = DatasetCatalog.get("coco_tiny_val")[:3]
    mapper = WeakDatasetMapper(cfg, is_train=False)
    loader = build_detection_test_loader(dicts, mapper=mapper)
    res = inference_on_dataset(model, loader, InstanceAPrEvaluator("coco_tiny_val"))["segm_APr"]
    assert {"AP^r@0.5", "AP^r_vol"} <= set(res)
    with torch.no_grad():
        out = model([mapper(dicts[0])])[0]["instances"]
    assert out.pred_masks.dtype == torch.bool and out.pred_masks.shape[1:] == (dicts[0]["height"], dicts[0]["width"])
    model.crf_enabled = False  # the plain GeneralizedRCNN path: the same detections
    with torch.no_grad():
        plain = model([mapper(dicts[0])])[0]["instances"]
    assert torch.equal(plain.pred_boxes.tensor, out.pred_boxes.tensor)
