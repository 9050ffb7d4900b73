"""WeakDatasetMapper: masks, pseudo masks, box-only instances and ignore regions under flip/resize/crop."""
import pickle

import numpy as np
import pytest

pytest.importorskip("detectron2")

from detectron2.config import get_cfg  # noqa: E402
from detectron2.data import build_detection_train_loader  # noqa: E402
from detectron2.data import transforms as T  # noqa: E402

from wsis.config import add_wsis_config  # noqa: E402
from wsis.data.coco_weak import load_coco_instances  # noqa: E402
from wsis.data.mapper import WeakDatasetMapper  # noqa: E402
from wsis.data.pseudo_store import attach_pseudo_masks, encode_mask  # noqa: E402


def _mapper(augs, mask_on=True, fmt="bitmask"):
    return WeakDatasetMapper(is_train=True, augmentations=augs, image_format="BGR", use_instance_mask=mask_on,
                             instance_mask_format=fmt)


def test_mixed_supervision_flip(tiny_coco):
    dicts, _ = load_coco_instances(*tiny_coco)
    m = _mapper([T.RandomFlip(prob=1.0)])
    out = m(dicts[0])
    inst = out["instances"]
    assert len(inst) == 2, "crowd dropped"
    assert inst.gt_mask_valid.tolist() == [True, True]
    # polygon [10..30]x[10..20] flipped in a 60 wide image -> x in [30, 50]
    assert inst.gt_boxes.tensor[0].tolist() == pytest.approx([30, 10, 50, 20])
    mask0 = inst.gt_masks.tensor[0]
    assert mask0[12:18, 32:48].all() and not mask0[:, :29].any()
    # RLE mask rows 5..15, cols 30..50 -> cols 10..30 after flip
    assert inst.gt_masks.tensor[1][5:15, 10:30].all() and inst.gt_masks.tensor[1].sum() == 200
    # box-only image: zeros mask, invalid, no crash (detectron2#1650)
    out = m(dicts[1])
    assert out["instances"].gt_mask_valid.tolist() == [False]
    assert out["instances"].gt_masks.tensor.sum() == 0
    assert out["image_labels"] == [0]


def test_box_only_without_mask_on(tiny_coco):
    dicts, _ = load_coco_instances(*tiny_coco, supervision="box")
    out = _mapper([], mask_on=False)(dicts[0])
    assert not out["instances"].has("gt_masks") and len(out["instances"]) == 2


def test_pseudo_masks_and_ignore_under_resize_and_crop(tiny_coco):
    dicts, _ = load_coco_instances(*tiny_coco, supervision="box")
    m0 = np.zeros((40, 60), dtype=bool)
    m0[10:20, 10:30] = True
    ignore = np.zeros((40, 60), dtype=bool)
    ignore[0:4, 0:60] = True
    records = {7: {"image_id": 7, "height": 40, "width": 60, "ignore": encode_mask(ignore), "instances": [
        {"annotation_id": 1, "category_id": 0, "bbox": [10, 10, 20, 10], "segmentation": encode_mask(m0),
         "valid": True, "ignore": None, "score": 1.0},
        {"annotation_id": 2, "category_id": 1, "bbox": [30, 5, 20, 10], "segmentation": encode_mask(m0),
         "valid": False, "ignore": None, "score": 0.3}]}}
    attached = attach_pseudo_masks(dicts, records)
    out = _mapper([T.Resize((80, 120)), _FixedCrop(0, 0, 100, 80)])(attached[0])
    inst = out["instances"]
    assert out["image"].shape[1:] == (80, 100)
    assert inst.gt_mask_valid.tolist() == [True, False]
    assert inst.gt_masks.tensor[0].sum() == 20 * 40, "pseudo mask resized x2 and inside the crop"
    assert inst.gt_masks.tensor[1].sum() == 0, "invalid pseudo mask is not given"
    # boxes come from the annotations, not recomputed from masks
    assert inst.gt_boxes.tensor[1].tolist() == pytest.approx([60, 10, 100, 30])
    assert out["ignore_mask"].shape == (80, 100) and out["ignore_mask"][:8].all() and out["ignore_mask"].sum() == 800
    assert len(inst.gt_ignore) == 2 and inst.gt_ignore.tensor.data_ptr() == out["ignore_mask"].data_ptr()


def test_valid_mask_cropped_away_drops_instance_but_box_only_stays(tiny_coco):
    dicts, _ = load_coco_instances(*tiny_coco)
    d = dicts[0]
    d["annotations"][1].pop("segmentation")  # dog becomes box-only
    d["annotations"][1]["mask_valid"] = False
    # keep only x in [30, 60): the cat polygon [10, 30] is cut away, the dog box [30, 50] stays
    out = _mapper([_FixedCrop(30, 0, 30, 40)])(d)
    assert out["instances"].gt_classes.tolist() == [1]
    assert out["instances"].gt_mask_valid.tolist() == [False]


class _FixedCrop(T.Augmentation):
    def __init__(self, x0, y0, w, h):
        super().__init__()
        self._init(locals())

    def get_transform(self, image):
        return T.CropTransform(self.x0, self.y0, self.w, self.h)


def test_unreadable_image_names_file_and_id(tiny_coco, tmp_path):
    dicts, _ = load_coco_instances(*tiny_coco)
    (tmp_path / "images" / "a.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(OSError, match=r"a\.jpg \(image id 7\)"):
        _mapper([])(dicts[0])
    (tmp_path / "images" / "a.jpg").unlink()
    with pytest.raises(OSError, match=r"image id 7"):
        _mapper([])(dicts[0])


def test_picklable_and_two_worker_loader(coco_tiny):
    cfg = add_wsis_config(get_cfg())
    cfg.INPUT.MASK_FORMAT = "bitmask"
    cfg.MODEL.MASK_ON = True
    cfg.INPUT.MIN_SIZE_TRAIN = (200,)
    cfg.INPUT.MAX_SIZE_TRAIN = 300
    cfg.INPUT.CROP.ENABLED = True
    mapper = WeakDatasetMapper(cfg, is_train=True)
    assert mapper.recompute_boxes is True  # MASK_ON + crop, as Detectron2 (real masks only, see test_weak_labels_d2)
    pickle.loads(pickle.dumps(mapper))
    dicts, _ = load_coco_instances(*coco_tiny)
    dicts = [d for d in dicts if d["annotations"]][:16]
    loader = build_detection_train_loader(dataset=dicts, mapper=mapper, total_batch_size=4, num_workers=2)
    seen = set()
    for i, batch in enumerate(loader):
        for x in batch:
            seen.add(x["image_id"])
            inst = x["instances"]
            assert inst.gt_masks.tensor.shape[1:] == x["image"].shape[1:]
            assert len(inst.gt_mask_valid) == len(inst)
        if i == 5:
            break
    assert len(seen) >= 8
