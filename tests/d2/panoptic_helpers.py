"""A small synthetic panoptic set for the panoptic network's detectron2 tests: sky above grass (stuff) and red
balls (things), COCO instances json (balls and stuff segments, with boxes and masks), COCO panoptic labels (the
wsis writer's format) and their registrations."""
import os

import cv2
import numpy as np

from wsis.core.masks import encode_mask
from wsis.methods.panoptic.label_job import write_panoptic_json, write_panoptic_label

from conftest import write_coco

CATEGORIES = [{"id": 1, "name": "ball", "isthing": 1}, {"id": 92, "name": "sky", "isthing": 0},
              {"id": 93, "name": "grass", "isthing": 0}]
SIZE = 64


def make_panoptic_set(root, n=6, seed=0):
    """Images ``<root>/images/<id>.jpg``, ``<root>/instances.json`` and true labels in ``<root>/labels``.

    Returns:
        (str, str, str, list[dict]): json, image folder, label folder, and each image's (ids, segments)."""
    rng = np.random.RandomState(seed)
    img_dir, lab_dir = os.path.join(root, "images"), os.path.join(root, "labels")
    os.makedirs(img_dir, exist_ok=True)
    images, anns, dicts, truth = [], [], [], []
    for k in range(1, n + 1):
        horizon = int(rng.randint(20, 44))
        img = np.zeros((SIZE, SIZE, 3), np.uint8)
        img[:horizon] = (200, 150, 60)   # sky (BGR)
        img[horizon:] = (40, 160, 40)    # grass
        ids = np.zeros((SIZE, SIZE), np.int32)
        ids[:horizon], ids[horizon:] = 1, 2
        segments = [{"id": 1, "category_id": 1}, {"id": 2, "category_id": 2}]
        for b in range(1 + k % 2):
            x, y, s = int(rng.randint(2, 40)), int(rng.randint(2, 40)), int(rng.randint(12, 20))
            img[y:y + s, x:x + s] = (30, 30, 220)
            ids[y:y + s, x:x + s] = 3 + b
            segments.append({"id": 3 + b, "category_id": 0})
        img = np.clip(img.astype(int) + rng.randint(-10, 10, img.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(os.path.join(img_dir, f"{k}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 100])
        images.append({"id": k, "file_name": f"{k}.jpg", "height": SIZE, "width": SIZE})
        for s in segments:
            mask = ids == s["id"]
            if not mask.any():
                continue
            ys, xs = np.nonzero(mask)
            anns.append({"id": 10 * k + s["id"], "image_id": k, "category_id": CATEGORIES[s["category_id"]]["id"],
                         "iscrowd": 0, "segmentation": encode_mask(mask), "area": int(mask.sum()),
                         "bbox": [float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()),
                                  float(ys.max() + 1 - ys.min())]})
        segments = [dict(s, area=int((ids == s["id"]).sum())) for s in segments if (ids == s["id"]).any()]
        write_panoptic_label(lab_dir, k, ids, [dict(s) for s in segments])
        dicts.append({"image_id": k, "file_name": f"{k}.jpg", "height": SIZE, "width": SIZE})
        truth.append((ids, segments))
    write_panoptic_json(dicts, CATEGORIES, lab_dir)
    json_file = write_coco(os.path.join(root, "instances.json"), images, anns, CATEGORIES)
    return json_file, img_dir, lab_dir, truth


def register_panoptic_set(root, prefix):
    """``<prefix>_box`` (boxes of the balls and the stuff segments) and ``<prefix>_panoptic`` (the true labels)."""
    from detectron2.data import DatasetCatalog

    from wsis.data.datasets.register import register_coco_panoptic_from_json, register_coco_weak

    json_file, img_dir, lab_dir, truth = make_panoptic_set(root)
    for name in (f"{prefix}_box", f"{prefix}_panoptic"):
        if name in DatasetCatalog.list():
            DatasetCatalog.remove(name)
    register_coco_weak(f"{prefix}_box", json_file, img_dir, supervision="box")
    register_coco_panoptic_from_json(f"{prefix}_panoptic", img_dir, lab_dir, os.path.join(lab_dir, "panoptic.json"))
    return lab_dir, truth
