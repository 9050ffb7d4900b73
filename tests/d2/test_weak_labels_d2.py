"""Weak labels through the glue: per-instance ignore regions reach the mask head, boxes are recomputed only from real
masks, ground-truth masks stay out of weak training unless asked for, one pseudo-mask file may cover every
training set, and the per-image / per-instance fields concatenate."""
import json
import logging

import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.config import get_cfg  # noqa: E402
from detectron2.data import DatasetCatalog, MetadataCatalog  # noqa: E402
from detectron2.data import transforms as T  # noqa: E402
from detectron2.structures import Boxes, Instances  # noqa: E402

from wsis.config import add_wsis_config  # noqa: E402
from wsis.data.build import get_weak_train_dicts  # noqa: E402
from wsis.data.coco_weak import load_coco_instances  # noqa: E402
from wsis.data.mapper import WeakDatasetMapper  # noqa: E402
from wsis.data.pseudo_store import PseudoMaskWriter, attach_pseudo_masks, encode_mask, make_provenance  # noqa: E402
from wsis.methods.proxy_mask_rcnn.losses import weak_mask_targets  # noqa: E402
from wsis.core.fields import PerImageField, PerInstanceField  # noqa: E402

from conftest import write_coco  # noqa: E402


def _rect(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def _mapper(augs=(), recompute_boxes=False):
    return WeakDatasetMapper(is_train=True, augmentations=list(augs), image_format="BGR", use_instance_mask=True,
                             instance_mask_format="bitmask", recompute_boxes=recompute_boxes)


def _overlap_scene(tmp_path):
    """A 40x60 image: cats A [0, 30) x [0, 20) and B [20, 50) x [0, 20) share columns 20-30 (ignored for both);
    a dog C covers the whole image."""
    import cv2

    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "s.png"), np.full((40, 60, 3), 128, np.uint8))
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 30, 20], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [20, 0, 30, 20], "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 3, "bbox": [0, 0, 60, 40], "iscrowd": 0}]
    json_file = write_coco(tmp_path / "s.json", [{"id": 1, "file_name": "s.png", "height": 40, "width": 60}], anns)
    dicts, _ = load_coco_instances(json_file, str(tmp_path / "img"), supervision="box")
    overlap = _rect(40, 60, 0, 20, 20, 30)
    record = {"image_id": 1, "height": 40, "width": 60, "ignore": encode_mask(_rect(40, 60, 36, 40, 0, 60)),
              "instances": [
                  {"annotation_id": 1, "category_id": 0, "bbox": [0, 0, 30, 20],
                   "segmentation": encode_mask(_rect(40, 60, 0, 20, 0, 20)), "ignore": encode_mask(overlap)},
                  {"annotation_id": 2, "category_id": 0, "bbox": [20, 0, 30, 20],
                   "segmentation": encode_mask(_rect(40, 60, 0, 20, 30, 50)), "ignore": encode_mask(overlap)},
                  {"annotation_id": 3, "category_id": 1, "bbox": [0, 0, 60, 40],
                   "segmentation": encode_mask(_rect(40, 60, 20, 36, 0, 60)), "ignore": None}]}
    return dicts, {1: dict(record, instances=[dict(i, valid=True, score=1.0) for i in record["instances"]])}


def test_per_instance_ignore_reaches_the_mask_head(tmp_path):
    dicts, records = _overlap_scene(tmp_path)
    out = _mapper()(attach_pseudo_masks(dicts, records)[0])
    inst = out["instances"]
    assert isinstance(inst.gt_ignore, PerInstanceField) and len(inst.gt_ignore) == 3
    np.testing.assert_array_equal(out["ignore_mask"].numpy(), _rect(40, 60, 36, 40, 0, 60))
    # proposals = the whole image for each instance, on a 6x4 grid (cells of 10x10 pixels)
    inst.proposal_boxes = Boxes(torch.tensor([[0.0, 0.0, 60.0, 40.0]] * 3))
    _, _, valid, ignore = weak_mask_targets([inst], 6, 0.5)
    assert valid.tolist() == [True, True, True]
    cells = np.zeros((6, 6), dtype=bool)  # the grid is 6x6 over the 40x60 image: rows of 6.7 px, columns of 10 px
    # cats: the overlap columns 20-30 in the top half are ignored; everyone: the bottom band of the image
    for i in (0, 1):
        assert ignore[i, :3, 2].all() and not ignore[i, :3, [0, 1, 3, 4, 5]].any()
        assert ignore[i, 5].all()
    # the dog is not silenced by the cats' overlap: only the image-level band is ignored for it
    assert not ignore[2, :5].any() and ignore[2, 5].all()
    del cells


def test_image_level_ignore_alone_stays_a_shared_field(tiny_coco):
    dicts, _ = load_coco_instances(*tiny_coco, supervision="box")
    record = {"image_id": 7, "height": 40, "width": 60, "ignore": encode_mask(_rect(40, 60, 0, 4, 0, 60)),
              "instances": [{"annotation_id": 1, "category_id": 0, "bbox": [10, 10, 20, 10], "valid": True,
                             "segmentation": encode_mask(_rect(40, 60, 10, 20, 10, 30)), "ignore": None,
                             "score": 1.0}]}
    out = _mapper()(attach_pseudo_masks(dicts, {7: record})[0])
    assert isinstance(out["instances"].gt_ignore, PerImageField)
    assert out["instances"].gt_ignore.tensor.data_ptr() == out["ignore_mask"].data_ptr()


class _Crop(T.Augmentation):
    def __init__(self, x0, y0, w, h):
        super().__init__()
        self._init(locals())

    def get_transform(self, image):
        return T.CropTransform(self.x0, self.y0, self.w, self.h)


def test_boxes_are_recomputed_from_real_masks_only(tiny_coco):
    dicts, _ = load_coco_instances(*tiny_coco)
    d = dicts[0]  # cat: polygon [10, 30] x [10, 20], box the same; dog: RLE rows 5-15, cols 30-50
    pseudo = _rect(40, 60, 8, 12, 33, 40)  # a small pseudo mask inside the dog's box
    record = {"image_id": 7, "height": 40, "width": 60, "ignore": None, "instances": [
        {"annotation_id": 2, "category_id": 1, "bbox": [30, 5, 20, 10], "segmentation": encode_mask(pseudo),
         "valid": True, "ignore": None, "score": 1.0}]}
    attached = attach_pseudo_masks([d], {7: record}, keep_existing_masks=True)[0]
    crop = [_Crop(15, 0, 45, 40)]  # cuts the cat's polygon at x = 15
    inst = _mapper(crop, recompute_boxes=True)(attached)["instances"]
    # the real mask's box follows the cropped polygon: x from 0 (= 15 - 15) to 15 (= 30 - 15)
    assert inst.gt_boxes.tensor[0].tolist() == pytest.approx([0, 10, 15, 20], abs=1)
    # the pseudo mask's box stays the annotated box (crop-shifted), not the pseudo mask's tight box
    assert inst.gt_boxes.tensor[1].tolist() == pytest.approx([15, 5, 35, 15])
    # and with recompute off (Detectron2's default without crop), both keep their annotated boxes
    inst = _mapper(crop, recompute_boxes=False)(attached)["instances"]
    assert inst.gt_boxes.tensor[0].tolist() == pytest.approx([0, 10, 15, 20])


def test_from_config_recomputes_boxes_as_detectron2_does():
    cfg = add_wsis_config(get_cfg())
    cfg.MODEL.MASK_ON = True
    cfg.INPUT.CROP.ENABLED = True
    assert WeakDatasetMapper(cfg, is_train=True).recompute_boxes is True
    cfg.INPUT.CROP.ENABLED = False
    assert WeakDatasetMapper(cfg, is_train=True).recompute_boxes is False


def _register(name, json_file, image_root):
    from wsis.data.datasets import register_coco_weak

    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_coco_weak(name, json_file, image_root)


def _store(path, dicts, image_ids):
    prov = make_provenance("test", {}, source="t", source_hash="-")
    with PseudoMaskWriter(str(path), prov) as writer:
        for d in dicts:
            if d["image_id"] not in image_ids:
                continue
            h, w = d["height"], d["width"]
            writer.add({"image_id": d["image_id"], "height": h, "width": w, "instances": [
                {"annotation_id": a["id"], "category_id": a["category_id"], "bbox": a["bbox"],
                 "segmentation": encode_mask(_rect(h, w, 0, 2, 0, 2))}
                for a in d["annotations"] if not a["iscrowd"]]})
    return str(path)


def _cfg(train, files, keep=None):
    cfg = add_wsis_config(get_cfg())
    cfg.DATASETS.TRAIN = tuple(train)
    cfg.WSIS.DATA.PSEUDO_MASKS = tuple(files)
    if keep is not None:
        cfg.WSIS.DATA.KEEP_GT_MASKS = keep
    return cfg


def test_ground_truth_masks_stay_out_of_weak_training_by_default(tiny_coco, tmp_path, caplog):
    _register("weak_labels_test_full", *tiny_coco)  # registered WITH masks
    dicts, _ = load_coco_instances(*tiny_coco)
    store = _store(tmp_path / "p.json", dicts, {9})  # covers image 9 only
    out = {d["image_id"]: d for d in get_weak_train_dicts(_cfg(["weak_labels_test_full"], [store]))}
    for a in out[7]["annotations"]:
        if not a["iscrowd"]:
            assert a["mask_valid"] is False and "segmentation" not in a, "a GT mask leaked into weak training"
    with caplog.at_level(logging.INFO):
        kept = {d["image_id"]: d for d in get_weak_train_dicts(_cfg(["weak_labels_test_full"], [store], True))}
    assert [a["mask_valid"] for a in kept[7]["annotations"] if not a["iscrowd"]] == [True, True]
    assert "2 instances train on their registered (ground-truth) masks" in caplog.text
    assert "(2 of them their registered ground-truth mask, WSIS.DATA.KEEP_GT_MASKS)" in caplog.text


def test_one_pseudo_mask_file_for_all_training_sets(tiny_coco, tmp_path):
    json_file, images = tiny_coco
    data = json.load(open(json_file))
    parts = []
    for image in data["images"]:  # two training sets of one image each
        anns = [a for a in data["annotations"] if a["image_id"] == image["id"]]
        name = f"weak_labels_test_part{image['id']}"
        _register(name, write_coco(tmp_path / f"{image['id']}.json", [image], anns, data["categories"]), images)
        parts.append(name)
    dicts, _ = load_coco_instances(*tiny_coco)
    store = _store(tmp_path / "all.json", dicts, {7, 9})
    out = get_weak_train_dicts(_cfg(parts, [store]))
    assert sorted(d["image_id"] for d in out) == [7, 9]
    assert all(a["mask_valid"] for d in out for a in d["annotations"] if not a["iscrowd"])
    with pytest.raises(ValueError, match="one file for all of them, or one per DATASETS.TRAIN entry"):
        get_weak_train_dicts(_cfg(parts * 2, [store, store, store]))
    with pytest.raises(ValueError, match="appears in more than one"):
        get_weak_train_dicts(_cfg([parts[0], parts[0]], [store]))


def test_fields_concatenate_with_instances_cat():
    region = torch.zeros(4, 5, dtype=torch.bool)
    region[0] = True
    a, b = Instances((4, 5)), Instances((4, 5))
    a.gt_ignore, b.gt_ignore = PerImageField(region, 2), PerImageField(region, 1)
    cat = Instances.cat([a, b])
    assert isinstance(cat.gt_ignore, PerImageField) and len(cat.gt_ignore) == 3 and cat.gt_ignore.tensor is region
    other = torch.ones(4, 5, dtype=torch.bool)
    b.gt_ignore = PerImageField(other, 1)
    cat = Instances.cat([a, b])
    assert isinstance(cat.gt_ignore, PerInstanceField) and len(cat.gt_ignore) == 3
    assert torch.equal(cat.gt_ignore.tensor[0], region) and torch.equal(cat.gt_ignore.tensor[2], other)
    c = Instances((4, 5))
    c.gt_ignore = PerInstanceField(torch.zeros(2, 4, 5, dtype=torch.bool))
    mixed = Instances.cat([a, c])
    assert len(mixed.gt_ignore) == 4 and not mixed.gt_ignore.tensor[2:].any()
    boxes = torch.tensor([[0.0, 0.0, 5.0, 4.0]] * 4)
    frac = mixed.gt_ignore.crop_and_resize(boxes, 4)
    assert frac.shape == (4, 4, 4) and frac[0, 0].min() > 0.99 and frac[0, 1:].max() < 0.01 and frac[2:].max() == 0
    assert len(mixed.gt_ignore[torch.tensor([True, False, True, False])]) == 2


def test_trainer_takes_loaders_and_evaluators_from_the_registry():
    from wsis.engine import LOADERS_REGISTRY, WeakInstanceLoaders, get_loaders
    from wsis.methods.boxcaseg.loaders import BoxCasegCropLoaders

    cfg = add_wsis_config(get_cfg())
    assert get_loaders(cfg) is WeakInstanceLoaders
    cfg.MODEL.META_ARCHITECTURE = "BoxCaseg"
    assert get_loaders(cfg) is BoxCasegCropLoaders

    @LOADERS_REGISTRY.register()
    class LoadersOfATestMethod(WeakInstanceLoaders):
        meta_architectures = ("ATestMetaArch",)

    try:
        cfg.MODEL.META_ARCHITECTURE = "ATestMetaArch"
        assert get_loaders(cfg) is LoadersOfATestMethod  # a new method plugs in by registering, nothing else
        cfg.WSIS.DATA.LOADERS = "WeakInstanceLoaders"
        assert get_loaders(cfg) is WeakInstanceLoaders
        cfg.WSIS.DATA.LOADERS = "NoSuchLoaders"
        with pytest.raises(KeyError, match="NoSuchLoaders"):
            get_loaders(cfg)
    finally:
        LOADERS_REGISTRY._obj_map.pop("LoadersOfATestMethod")
