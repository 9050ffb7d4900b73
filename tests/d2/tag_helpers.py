"""Shared by the detectron2 tests of the image-tag methods: a tiny tag dataset, its registration, a CAM classifier
config and a briefly trained classifier."""
import json
import os

import cv2
import numpy as np
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog

from wsis.config import add_wsis_config

from conftest import REPO

CAM_CFG = os.path.join(REPO, "projects", "CAM", "configs", "cam_R18_scratch_copy_paste.yaml")


def _tag_set(tmp_path, n=8, size=64):
    """n images: a bright square (class 0) in even images, a dark disc (class 1) in images 1, 2 mod 3, none in #7."""
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    rng = np.random.RandomState(0)
    images, anns = [], []
    for i in range(n):
        img = rng.randint(90, 140, (size, size, 3)).astype(np.uint8)
        mask = np.zeros((size, size), np.uint8)
        labels = []
        if i % 2 == 0 and i != 6:
            x, y = 4 + 3 * i % 30, 6 + 5 * i % 30
            img[y:y + 20, x:x + 20] = 250
            labels.append(1)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "bbox": [x, y, 20, 20],
                         "iscrowd": 0, "segmentation": [[x, y, x + 20, y, x + 20, y + 20, x, y + 20]]})
            mask[y:y + 20, x:x + 20] = 1
        if i % 3 and i != 7:
            cv2.circle(img, (44, 44), 10, (10, 10, 10), -1)
            labels.append(2)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 2, "bbox": [34, 34, 21, 21],
                         "iscrowd": 0, "segmentation": [[34, 34, 55, 34, 55, 55, 34, 55]]})
        cv2.imwrite(str(folder / f"{i}.png"), img)
        images.append({"id": i + 1, "file_name": f"{i}.png", "height": size, "width": size, "image_labels": labels})
    path = tmp_path / "ann.json"
    json.dump({"images": images, "annotations": anns,
               "categories": [{"id": 1, "name": "square"}, {"id": 2, "name": "disc"}]}, open(path, "w"))
    return str(path), str(folder)


def _register(name, json_file, images, supervision):
    from wsis.data.datasets import register_coco_weak

    for n in (name,):
        if n in DatasetCatalog.list():
            DatasetCatalog.remove(n)
            MetadataCatalog.remove(n)
    register_coco_weak(name, json_file, images, supervision=supervision)


def _tag_data(tmp_path):
    """The tag set, registered as ``cam_test_tag`` (tags) and ``cam_test`` (masks): (json file, image folder)."""
    json_file, images = _tag_set(tmp_path)
    _register("cam_test_tag", json_file, images, "tag")
    _register("cam_test", json_file, images, "mask")
    return json_file, images


def _cam_cfg(tmp_path, opts=()):
    import wsis.modeling  # noqa: F401

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(CAM_CFG)
    cfg.merge_from_list(["MODEL.CAM.NUM_CLASSES", "2", "DATASETS.TRAIN", "('cam_test_tag',)",
                         "DATASETS.TEST", "('cam_test',)", "SOLVER.IMS_PER_BATCH", "4", "SOLVER.MAX_ITER", "3",
                         "INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "64", "INPUT.MIN_SIZE_TEST", "64",
                         "INPUT.MAX_SIZE_TEST", "64", "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR",
                         str(tmp_path / "out"), "SEED", "0", *opts])
    return cfg


def _trained_classifier(tmp_path):
    """A CAMClassifier checkpoint after a few iterations, and its config file."""
    from detectron2.checkpoint import DetectionCheckpointer

    from wsis.engine import WSISTrainer

    cfg = _cam_cfg(tmp_path, ["SOLVER.MAX_ITER", "4", "SOLVER.CHECKPOINT_PERIOD", "100", "TEST.EVAL_PERIOD", "0"])
    trainer = WSISTrainer(cfg)
    trainer.train()
    DetectionCheckpointer(trainer.model, save_dir=str(tmp_path)).save("cam")
    config = tmp_path / "cam.yaml"
    config.write_text(cfg.dump())
    res = WSISTrainer.test(cfg, trainer.model)
    assert 0 <= res["classification"]["mAP"] <= 100 and res["classification"]["num_images"] == 8
    return str(config), str(tmp_path / "cam.pth")


def _register_sem_gt(tmp_path):
    """The tag set's true semantic maps, registered as ``cam_test_sem_seg`` (written under tmp_path/gt)."""
    from wsis.data.datasets import register_semantic_ground_truth

    if "cam_test_sem_seg" in DatasetCatalog.list():
        DatasetCatalog.remove("cam_test_sem_seg")
        MetadataCatalog.remove("cam_test_sem_seg")
    register_semantic_ground_truth("cam_test_sem_seg", "cam_test", str(tmp_path / "gt"))
    return DatasetCatalog.get("cam_test_sem_seg")


def _tree_bytes(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            out[os.path.relpath(os.path.join(root, f), folder)] = open(os.path.join(root, f), "rb").read()
    return out
