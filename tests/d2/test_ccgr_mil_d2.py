"""CCGR's MIL branch with a real detectron2: bags from peaks and proposals written as a bag file, the mapper
keeping them through a flip, a few iterations of WSDDNBagROIHeads under PrecomputedProposals, and one box per bag at
test, evaluated by box AP."""
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
from panoptic_helpers import SIZE, register_panoptic_set  # noqa: E402

CFG = os.path.join(REPO, "projects", "CCGR", "configs", "mil_R18_scratch_copy_paste.yaml")
PREFIX = "wsis_test_ccgr"


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    """The sky / grass / balls set; bags of the balls from their blurred true masks and jittered proposals."""
    from wsis.methods.ccgr.bag_file import write_bag_file
    from wsis.methods.ccgr.peaks import image_bags

    root = tmp_path_factory.mktemp("ccgr_set")
    _, truth = register_panoptic_set(str(root), PREFIX)
    rng = np.random.default_rng(0)
    by_image = {}
    for k, (ids, segments) in enumerate(truth, 1):
        balls = [s for s in segments if s["category_id"] == 0]
        mask = np.isin(ids, [s["id"] for s in balls]).astype(np.float32)
        cue = cv2.GaussianBlur(mask, (0, 0), 3.0)
        proposals = []
        for s in balls:
            ys, xs = np.nonzero(ids == s["id"])
            box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
            size = np.tile(box[2:] - box[:2], 2)
            proposals += [box] + [np.clip(box + rng.uniform(-0.4, 0.4, 4) * size, 0, SIZE) for _ in range(6)]
        proposals += [np.array([0, 0, SIZE, SIZE], np.float32)]
        proposals = np.stack(proposals)
        by_image[k] = image_bags(torch.from_numpy(cue)[None], [0], 1.0, torch.from_numpy(proposals),
                                 torch.ones(len(proposals)), torch.from_numpy(mask))
    path = str(root / "bags.pkl")
    write_bag_file(path, by_image)
    return path, by_image


def _cfg(tmp_path, bag_file, opts=()):
    import wsis.modeling  # noqa: F401

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(CFG)
    cfg.merge_from_list(["MODEL.ROI_HEADS.NUM_CLASSES", "3", "DATASETS.TRAIN", f"('{PREFIX}_box',)",
                         "DATASETS.TEST", f"('{PREFIX}_box',)", "WSIS.CCGR.BAGS", f"('{bag_file}',)",
                         "INPUT.MIN_SIZE_TRAIN", f"({SIZE},)", "INPUT.MAX_SIZE_TRAIN", str(SIZE),
                         "INPUT.MIN_SIZE_TEST", str(SIZE), "INPUT.MAX_SIZE_TEST", str(SIZE),
                         "SOLVER.IMS_PER_BATCH", "2",
                         "SOLVER.MAX_ITER", "4", "SOLVER.WARMUP_ITERS", "0", "SOLVER.STEPS", "()",
                         "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", str(tmp_path), *opts])
    return cfg


def test_bag_file_round_trip_and_errors(bags, tmp_path):
    from wsis.methods.ccgr.bag_file import read_bag_file, write_bag_file

    path, by_image = bags
    back = read_bag_file(path)
    assert sorted(back) == sorted(by_image)
    for k, b in by_image.items():
        np.testing.assert_allclose(back[k]["boxes"], b["boxes"].numpy())
        assert back[k]["bag_index"].tolist() == b["bag_index"].tolist()
        assert back[k]["bag_labels"].tolist() == b["bag_labels"].tolist() == [0] * len(b["bag_labels"])
    assert all(len(b["bag_labels"]) >= 1 for b in by_image.values())
    bad = dict(by_image[1], bag_labels=torch.tensor([0, 0, 0, 0, 0, 0]))  # bags without proposals
    write_bag_file(str(tmp_path / "bad.pkl"), {1: bad})
    with pytest.raises(ValueError, match="image id 1 has a bag without proposals"):
        read_bag_file(str(tmp_path / "bad.pkl"))


def test_mapper_keeps_the_bags_through_a_flip(bags, tmp_path):
    from detectron2.data import transforms as T

    from wsis.methods.ccgr.bag_file import attach_bags, read_bag_file
    from wsis.methods.ccgr.mapper import CCGRBagMapper

    path, by_image = bags
    cfg = _cfg(tmp_path, path)
    d = attach_bags(DatasetCatalog.get(f"{PREFIX}_box"), read_bag_file(path))[0]
    mapper = CCGRBagMapper(cfg, is_train=True)
    mapper.augmentations = T.AugmentationList([T.RandomFlip(prob=1.0)])
    p = mapper(d)["proposals"]
    boxes = by_image[d["image_id"]]["boxes"]
    flipped = torch.stack([SIZE - boxes[:, 2], boxes[:, 1], SIZE - boxes[:, 0], boxes[:, 3]], 1)
    assert torch.allclose(p.proposal_boxes.tensor, flipped)
    assert p.bag_index.tolist() == by_image[d["image_id"]]["bag_index"].tolist() and (p.bag_class == 0).all()


def test_mil_head_trains_and_gives_one_box_per_bag(bags, tmp_path):
    from wsis.engine import WSISTrainer

    path, by_image = bags
    torch.manual_seed(0)
    cfg = _cfg(tmp_path, path)
    trainer = WSISTrainer(cfg)
    heads = trainer.model.roi_heads
    before = heads.det_score.weight.detach().clone()
    trainer.train()
    assert np.isfinite(trainer.storage.latest()["total_loss"][0])  # loss_mil, the only loss
    assert not torch.equal(before, heads.det_score.weight)
    model = trainer.model.eval()
    from wsis.methods.ccgr.bag_file import attach_bags, read_bag_file
    from wsis.methods.ccgr.mapper import CCGRBagMapper

    d = attach_bags(DatasetCatalog.get(f"{PREFIX}_box"), read_bag_file(path))[0]
    with torch.no_grad():
        inst = model([CCGRBagMapper(cfg, is_train=False)(d)])[0]["instances"]
    b = by_image[d["image_id"]]
    assert len(inst) == len(b["bag_labels"]) and inst.pred_classes.tolist() == b["bag_labels"].tolist()
    for k in range(len(inst)):  # each bag's box is one of its own proposals
        own = b["boxes"][b["bag_index"] == k]
        assert (own - inst.pred_boxes.tensor[k]).abs().sum(1).min() < 1e-3
    assert ((inst.scores > 0) & (inst.scores < 1)).all()  # φ_B, clamped below 1
    results = WSISTrainer.test(cfg, model)
    assert "AP" in results["bbox"]
