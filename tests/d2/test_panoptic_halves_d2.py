"""Registration of the things + stuff halves of coco_panoptic_val100 (needs detectron2 and ../shared/data)."""
import os

import numpy as np
import pytest

pytest.importorskip("detectron2")

from detectron2.data import DatasetCatalog, MetadataCatalog  # noqa: E402
from PIL import Image  # noqa: E402

import wsis.data.datasets  # noqa: E402,F401
from wsis.data.converters import convert_panoptic_halves  # noqa: E402
from wsis.data.datasets import register_coco_panoptic_halves  # noqa: E402

from conftest import SHARED_DATA  # noqa: E402

PANOPTIC = os.path.join(SHARED_DATA, "coco_panoptic_val100")
pytestmark = pytest.mark.skipif(not os.path.isdir(PANOPTIC), reason="no shared data")
NAMES = ("train", "val", "train_tag", "train_sem_seg", "val_sem_seg")


def test_builtin_names():
    registered = set(DatasetCatalog.list())
    assert {f"coco_panoptic_halves_{n}" for n in NAMES} <= registered
    assert {f"copy_paste_{n}" for n in NAMES} <= registered  # register_copy_paste still registers its set
    md = MetadataCatalog.get("coco_panoptic_halves_train")
    default = os.path.expanduser(os.environ.get("WSIS_PANOPTIC_HALVES", os.path.join(
        "datasets", "coco_panoptic_val100_halves")))
    assert md.json_file == os.path.join(default, "annotations", "instances_train.json")


def test_registered_halves(tmp_path):
    out = str(tmp_path / "halves")
    convert_panoptic_halves(os.path.join(PANOPTIC, "annotations", "panoptic_val2017.json"),
                            os.path.join(PANOPTIC, "annotations", "panoptic_val2017"), os.path.join(PANOPTIC, "images"),
                            out, progress=False)
    register_coco_panoptic_halves(out, prefix="test_pan_halves")
    train, val = DatasetCatalog.get("test_pan_halves_train"), DatasetCatalog.get("test_pan_halves_val")
    assert len(train) == len(val) == 50 and not {d["image_id"] for d in train} & {d["image_id"] for d in val}
    md = MetadataCatalog.get("test_pan_halves_train")
    assert len(md.thing_classes) == 133 and md.thing_classes[-1] == "rug-merged" and md.evaluator_type == "coco"
    tag = DatasetCatalog.get("test_pan_halves_train_tag")
    assert all(d["annotations"] == [] and d["supervision"] == "tag" for d in tag)
    assert [d["image_labels"] for d in tag] == [d["image_labels"] for d in train]
    assert max(max(d["image_labels"]) for d in tag) >= 80  # stuff classes are tags too
    for split, dicts in (("train", train), ("val", val)):
        sem = DatasetCatalog.get(f"test_pan_halves_{split}_sem_seg")
        smd = MetadataCatalog.get(f"test_pan_halves_{split}_sem_seg")
        assert len(smd.stuff_classes) == 134 and smd.stuff_classes[0] == "background" and smd.ignore_label == 255
        assert smd.evaluator_type == "sem_seg" and len(sem) == 50
        d = sem[0]
        label = np.asarray(Image.open(d["sem_seg_file_name"]))
        assert d["sem_seg_file_name"] == os.path.join(out, "semantic", split, f"{d['image_id']}.png")
        assert label.shape == (d["height"], d["width"]) and os.path.isfile(d["file_name"])
