"""Salient-object folders → dataset dicts / COCO json (BoxCaseg's DUTS-Single rule)."""
import importlib.util
import json
import os

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO

from wsis.data.converters import (
    ConversionError,
    binarize_salient_mask,
    count_salient_objects,
    load_salient_folder,
    salient_folder_to_coco,
)

from conftest import REPO, SHARED_DATA

H, W = 40, 50  # 1 % of the image is 20 px
ECSSD = os.path.join(SHARED_DATA, "ecssd")


def _mask(*rects, value=255):
    m = np.zeros((H, W), np.uint8)
    for y0, y1, x0, x1 in rects:
        m[y0:y1, x0:x1] = value
    return m


ONE = _mask((5, 30, 10, 40))
TWO = _mask((2, 12, 2, 12), (20, 38, 25, 48))
SPECK = _mask((10, 35, 5, 30), (0, 2, 47, 49))  # 4 px speck far away from the object
SOFT = np.where(_mask((8, 20, 8, 20)) > 0, 200, 0).astype(np.uint8)
SOFT[25:35, 30:45] = 100  # below the 128 threshold: background
CASES = {"0001": ONE, "0002": TWO, "0003": SPECK, "0004": SOFT}


def _write(folder, cases, image_ext=".jpg", sizes=None):
    img_dir, mask_dir = folder / "images", folder / "masks"
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(mask_dir, exist_ok=True)
    for stem, m in cases.items():
        h, w = (sizes or {}).get(stem, m.shape)
        cv2.imwrite(str(img_dir / (stem + image_ext)), np.full((h, w, 3), 127, np.uint8))
        cv2.imwrite(str(mask_dir / (stem + ".png")), m)
    return str(img_dir), str(mask_dir)


def _box(m):
    ys, xs = np.nonzero(m)
    return [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_object_counting_rule():
    assert count_salient_objects(ONE) == 1 and count_salient_objects(TWO) == 2
    assert count_salient_objects(SPECK) == 1  # 4 px < 1 % of 2000 px
    assert count_salient_objects(SPECK, min_area_fraction=0) == 2
    assert count_salient_objects(SOFT) == 1 and count_salient_objects(SOFT, threshold=50) == 2
    assert count_salient_objects(np.zeros((H, W), np.uint8)) == 0
    assert count_salient_objects(_mask((0, 2, 0, 2))) == 1  # the largest component always counts
    diag = np.zeros((H, W), np.uint8)
    diag[10:20, 10:20], diag[20:30, 20:30] = 255, 255  # touching at a corner: one object (8-connected)
    assert count_salient_objects(diag) == 1
    np.testing.assert_array_equal(binarize_salient_mask(ONE // 255), ONE > 0)  # 0/1 masks


def test_load_folder(tmp_path):
    img_dir, mask_dir = _write(tmp_path, CASES)
    records = load_salient_folder(img_dir, mask_dir)
    assert [r["image_id"] for r in records] == [1, 2, 3, 4]
    assert [r["num_objects"] for r in records] == [1, 2, 1, 1]
    r = records[0]
    assert r["file_name"] == os.path.join(img_dir, "0001.jpg") and os.path.isabs(r["file_name"])
    assert r["sem_seg_file_name"] == os.path.join(mask_dir, "0001.png")
    assert (r["height"], r["width"]) == (H, W)
    expected = {1: ONE > 0, 2: TWO > 0, 3: _mask((10, 35, 5, 30)) > 0, 4: _mask((8, 20, 8, 20)) > 0}
    for r in records:
        (a,) = r["annotations"]
        m = expected[r["image_id"]]
        assert isinstance(a["segmentation"]["counts"], str)
        np.testing.assert_array_equal(mask_util.decode(a["segmentation"]).astype(bool), m)
        assert a["bbox"] == _box(m) and a["area"] == m.sum()
        assert (a["bbox_mode"], a["category_id"], a["iscrowd"]) == (1, 0, 0)
    assert [r["annotations"][0]["id"] for r in records] == [1, 2, 3, 4]


def test_single_object_per_component_and_subsets(tmp_path):
    img_dir, mask_dir = _write(tmp_path, CASES)
    single = load_salient_folder(img_dir, mask_dir, single_object_only=True)
    assert [r["image_id"] for r in single] == [1, 3, 4]
    parts = load_salient_folder(img_dir, mask_dir, per_component=True, image_ids=[2])
    assert len(parts) == 1 and [a["bbox"] for a in parts[0]["annotations"]] == [[25, 20, 23, 18], [2, 2, 10, 10]]
    assert [a["id"] for a in parts[0]["annotations"]] == [1, 2]
    assert [r["image_id"] for r in load_salient_folder(img_dir, mask_dir, index_range=(1, 3))] == [2, 3]


def test_non_numeric_stems_and_extensions(tmp_path):
    img_dir, mask_dir = _write(tmp_path, {"b_cat": ONE, "a_dog": TWO}, image_ext=".JPEG")
    records = load_salient_folder(img_dir, mask_dir)
    names = [(r["image_id"], os.path.basename(r["file_name"])) for r in records]
    assert names == [(0, "a_dog.JPEG"), (1, "b_cat.JPEG")]


def test_unpaired_files(tmp_path):
    img_dir, mask_dir = _write(tmp_path, CASES)
    os.remove(os.path.join(mask_dir, "0002.png"))
    with pytest.raises(ConversionError, match="images/0002.jpg has no mask"):
        load_salient_folder(img_dir, mask_dir)
    assert [r["image_id"] for r in load_salient_folder(img_dir, mask_dir, skip_missing=True)] == [1, 3, 4]
    os.remove(os.path.join(img_dir, "0003.jpg"))
    with pytest.raises(ConversionError, match="masks/0003.png has no image.*1 more"):
        load_salient_folder(img_dir, mask_dir)
    cv2.imwrite(os.path.join(img_dir, "0001.png"), np.zeros((H, W, 3), np.uint8))
    with pytest.raises(ConversionError, match="share stem '0001'"):
        load_salient_folder(img_dir, mask_dir, skip_missing=True)


def test_size_mismatch(tmp_path):
    img_dir, mask_dir = _write(tmp_path, CASES, sizes={"0003": (H, W + 1)})
    with pytest.raises(ConversionError, match=r"images/0003.jpg is 40x51 but mask .*masks/0003.png is 40x50"):
        load_salient_folder(img_dir, mask_dir)


def test_coco_json_and_cli(tmp_path):
    img_dir, mask_dir = _write(tmp_path, CASES)
    out = tmp_path / "out" / "salient.json"
    coco = salient_folder_to_coco(img_dir, mask_dir, str(out), single_object_only=True)
    assert json.loads(out.read_text()) == coco
    assert coco["categories"] == [{"id": 1, "name": "salient object", "supercategory": "salient"}]
    api = COCO(str(out))
    assert sorted(api.getImgIds()) == [1, 3, 4] and api.imgs[1]["file_name"] == "0001.jpg"
    np.testing.assert_array_equal(api.annToMask(api.loadAnns(api.getAnnIds(imgIds=[1]))[0]), ONE > 0)
    tool = os.path.join(REPO, "tools", "convert_salient.py")
    spec = importlib.util.spec_from_file_location("convert_salient_cli", tool)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out2 = tmp_path / "cli.json"
    argv = ["--images", img_dir, "--masks", mask_dir, "--out", str(out2), "--single-object", "--no-progress"]
    assert cli.main(argv) == 0
    assert out2.read_bytes() == out.read_bytes()
    assert cli.main(["--images", img_dir, "--masks", str(tmp_path / "nope"), "--out", str(out2)]) == 1


@pytest.mark.skipif(not os.path.isdir(ECSSD), reason="ECSSD not in ../shared/data")
def test_ecssd_single_object_count():
    """ECSSD's README says 927 of the 1000 images have one salient object; the default rule (8-connected components,
    specks < 1 % of the image ignored) gives exactly that. Without the speck rule 909 images would qualify."""
    records = load_salient_folder(os.path.join(ECSSD, "images"), os.path.join(ECSSD, "masks"))
    assert len(records) == 1000 and records[0]["image_id"] == 1
    counts = np.bincount([r["num_objects"] for r in records])
    assert counts.tolist() == [0, 927, 62, 7, 3, 1]
    single = load_salient_folder(os.path.join(ECSSD, "images"), os.path.join(ECSSD, "masks"), single_object_only=True)
    assert len(single) == 927 and all(len(r["annotations"]) == 1 for r in single)
