"""Shared fixtures. Tests needing detectron2 call ``pytest.importorskip("detectron2")``; the count of those skipped
is printed at the end of every run (CI has no detectron2)."""
import json
import os

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.abspath(os.environ.get("WSIS_DATASETS", os.path.join(REPO, "..", "shared", "data")))
os.environ.setdefault("WSIS_DATASETS", SHARED_DATA)

COCO_TINY = os.path.join(SHARED_DATA, "coco_tiny")


def load_tool(name):
    """Import ``tools/<name>.py`` as a module (the tools are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "tools", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    n = sum(1 for r in skipped if "detectron2" in str(getattr(r, "longrepr", "")))
    terminalreporter.write_line(f"skipped for lack of detectron2: {n}")


@pytest.fixture
def coco_tiny():
    """(json_file, image_root) of the real coco_tiny val split; skips when the shared data is absent."""
    json_file = os.path.join(COCO_TINY, "annotations", "instances_val2017.json")
    if not os.path.isfile(json_file):
        pytest.skip(f"shared data not found at {COCO_TINY}")
    return json_file, os.path.join(COCO_TINY, "val2017")


def write_coco(path, images, annotations, categories=None):
    """Write a small COCO json; returns its path."""
    categories = categories or [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}]
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return str(path)


@pytest.fixture
def tiny_coco(tmp_path):
    """A 2-image synthetic COCO set with real image files: polygons, an RLE mask, a crowd, a box-only instance."""
    import cv2
    import pycocotools.mask as mask_util

    img_dir = tmp_path / "images"
    img_dir.mkdir()
    rng = np.random.RandomState(0)
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(img_dir / name), rng.randint(0, 255, (40, 60, 3), dtype=np.uint8))
    rle_mask = np.zeros((40, 60), dtype=np.uint8, order="F")
    rle_mask[5:15, 30:50] = 1
    rle = mask_util.encode(rle_mask)
    rle["counts"] = rle["counts"].decode()
    images = [{"id": 7, "file_name": "a.jpg", "height": 40, "width": 60},
              {"id": 9, "file_name": "b.jpg", "height": 40, "width": 60}]
    anns = [
        {"id": 1, "image_id": 7, "category_id": 1, "bbox": [10, 10, 20, 10], "iscrowd": 0,
         "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]},
        {"id": 2, "image_id": 7, "category_id": 3, "bbox": [30, 5, 20, 10], "iscrowd": 0, "segmentation": rle},
        {"id": 3, "image_id": 7, "category_id": 3, "bbox": [0, 0, 5, 5], "iscrowd": 1, "segmentation": rle},
        {"id": 4, "image_id": 9, "category_id": 1, "bbox": [5, 5, 10, 30], "iscrowd": 0},
    ]
    return write_coco(tmp_path / "ann.json", images, anns), str(img_dir)
