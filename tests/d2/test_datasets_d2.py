"""Registration of the shared datasets (needs detectron2 and ../shared/data)."""
import os

import pytest

pytest.importorskip("detectron2")

from detectron2.data import DatasetCatalog, MetadataCatalog  # noqa: E402

import wsis.data.datasets  # noqa: E402,F401

from conftest import SHARED_DATA  # noqa: E402

needs_data = pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, "coco_tiny")), reason="no shared data")


@needs_data
def test_coco_tiny_variants():
    full = DatasetCatalog.get("coco_tiny_train")
    box = DatasetCatalog.get("coco_tiny_train_box")
    tag = DatasetCatalog.get("coco_tiny_train_tag")
    semi = DatasetCatalog.get("coco_tiny_train_semi50")
    assert len(full) == len(box) == len(tag) == len(semi) == 80
    assert all(d["supervision"] == "box" for d in box if d["annotations"])
    assert all(not d["annotations"] and d["image_labels"] for d in tag)
    n_mask = sum(d["supervision"] == "mask" for d in semi)
    assert 30 <= n_mask <= 50  # images with masks among the 40 selected ones (some may hold only crowds)
    md = MetadataCatalog.get("coco_tiny_train_box")
    assert len(md.thing_classes) == 80 and md.evaluator_type == "coco" and md.supervision == "box"
    assert DatasetCatalog.get("coco_tiny_val")[0]["annotations"][0]["mask_valid"]


@needs_data
def test_panoptic_and_ecssd():
    pan = DatasetCatalog.get("coco_panoptic_val100")
    assert len(pan) == 100 and os.path.isfile(pan[0]["pan_seg_file_name"]) and os.path.isfile(pan[0]["file_name"])
    md = MetadataCatalog.get("coco_panoptic_val100")
    assert len(md.stuff_classes) == 133 and len(md.thing_dataset_id_to_contiguous_id) == 80
    assert md.evaluator_type == "coco_panoptic_seg"
    assert len(DatasetCatalog.get("ecssd")) == 1000
    val = DatasetCatalog.get("ecssd_val")
    assert len(val) == 200 and min(d["image_id"] for d in val) == 801
    assert val[0]["annotations"][0]["mask_valid"]
    assert MetadataCatalog.get("ecssd").thing_classes == ["salient object"]
