"""PASCAL VOC 2012 + SBD → COCO converter on tiny synthetic trees in the real on-disk layouts."""
import importlib.util
import json
import os

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
import scipy.io
import scipy.sparse
from PIL import Image

from wsis.data.converters import (
    VOC_CLASSES,
    ConversionError,
    build_voc_sbd_coco,
    convert_voc_sbd,
    load_sbd_instances,
    voc_sbd_image_list,
)

H, W = 30, 40
from conftest import REPO  # noqa: E402


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(name + "_cli", os.path.join(REPO, "tools", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rect(y0, y1, x0, x1):
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def _palette_png(path, arr):
    img = Image.fromarray(arr.astype(np.uint8), mode="P")
    pal = [0, 0, 0] * 256
    pal[3:6], pal[6:9], pal[255 * 3:] = [128, 0, 0], [0, 128, 0], [224, 224, 192]
    img.putpalette(pal)
    img.save(path)


def _jpeg(path, h=H, w=W):
    cv2.imwrite(path, np.random.RandomState(0).randint(0, 255, (h, w, 3), dtype=np.uint8))


def write_voc(root, name, instances, void_band=True):
    """``instances``: list of (mask, class id). Instance k gets value k; a 1-px void band (255) rings each one."""
    obj, cls = np.zeros((H, W), np.uint8), np.zeros((H, W), np.uint8)
    for k, (m, c) in enumerate(instances, start=1):
        if void_band:
            ring = cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~m
            obj[ring], cls[ring] = 255, 255
        obj[m], cls[m] = k, c
    _palette_png(os.path.join(root, "SegmentationObject", name + ".png"), obj)
    _palette_png(os.path.join(root, "SegmentationClass", name + ".png"), cls)
    _jpeg(os.path.join(root, "JPEGImages", name + ".jpg"))


def write_sbd(root, name, instances, categories=None):
    """SBD ``inst/NAME.mat`` in the real layout: struct GTinst{Segmentation, Categories N×1, Boundaries N×1 cell}."""
    seg = np.zeros((H, W), np.uint8)
    for k, (m, _) in enumerate(instances, start=1):
        seg[m] = k
    cats = [c for _, c in instances] if categories is None else categories
    bounds = np.empty((len(cats), 1), dtype=object)
    for k in range(len(cats)):
        bounds[k, 0] = scipy.sparse.csc_matrix((seg == k + 1).astype(np.uint8))
    gt = {"Segmentation": seg, "Categories": np.asarray(cats, np.uint8).reshape(-1, 1), "Boundaries": bounds}
    scipy.io.savemat(os.path.join(root, "inst", name + ".mat"), {"GTinst": gt})
    cls = np.zeros((H, W), np.uint8)
    for m, c in instances:
        cls[m] = c
    cls_bounds = np.empty((20, 1), dtype=object)
    for c in range(20):
        cls_bounds[c, 0] = scipy.sparse.csc_matrix((cls == c + 1).astype(np.uint8))
    present = np.unique(cls[cls > 0]).reshape(-1, 1)
    gt_cls = {"Segmentation": cls, "CategoriesPresent": present, "Boundaries": cls_bounds}
    scipy.io.savemat(os.path.join(root, "cls", name + ".mat"), {"GTcls": gt_cls})
    _jpeg(os.path.join(root, "img", name + ".jpg"))


def _write_list(path, names):
    with open(path, "w") as f:
        f.write("".join(n + "\n" for n in names))


# what the tree holds: name -> {"voc": instances, "sbd": instances}
VOC_ONLY, OVERLAP, VOC_VAL_IN_SBD, VOC_VAL, SBD_TRAIN, SBD_VAL = (
    "2007_000001", "2007_000002", "2007_000003", "2007_000004", "2008_000005", "2008_000006"
)


@pytest.fixture
def tree(tmp_path):
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    sbd = tmp_path / "benchmark_RELEASE" / "dataset"
    for d in ("JPEGImages", "SegmentationObject", "SegmentationClass", "ImageSets/Segmentation"):
        os.makedirs(voc / d)
    for d in ("img", "inst", "cls"):
        os.makedirs(sbd / d)
    gt = {
        VOC_ONLY: {"voc": [(_rect(2, 12, 3, 15), 15), (_rect(15, 28, 20, 38), 12)]},
        OVERLAP: {"voc": [(_rect(5, 20, 5, 20), 8)], "sbd": [(_rect(4, 21, 4, 21), 8), (_rect(25, 29, 30, 39), 5)]},
        VOC_VAL_IN_SBD: {"voc": [(_rect(0, 30, 0, 10), 1)], "sbd": [(_rect(0, 30, 0, 11), 1)]},
        VOC_VAL: {"voc": [(_rect(10, 20, 10, 30), 20)]},
        SBD_TRAIN: {"sbd": [(_rect(0, 5, 0, 5), 2), (_rect(6, 30, 6, 40), 19), (_rect(0, 3, 30, 40), 2)]},
        SBD_VAL: {"sbd": [(_rect(1, 29, 1, 39), 7)]},
    }
    for name, srcs in gt.items():
        if "voc" in srcs:
            write_voc(str(voc), name, srcs["voc"])
        else:  # every SBD image is also in VOC2012/JPEGImages
            _jpeg(str(voc / "JPEGImages" / (name + ".jpg")))
        if "sbd" in srcs:
            write_sbd(str(sbd), name, srcs["sbd"])
    _write_list(voc / "ImageSets/Segmentation/train.txt", [VOC_ONLY, OVERLAP])
    _write_list(voc / "ImageSets/Segmentation/val.txt", [VOC_VAL_IN_SBD, VOC_VAL])
    _write_list(sbd / "train.txt", [OVERLAP, VOC_VAL_IN_SBD, SBD_TRAIN])
    _write_list(sbd / "val.txt", [SBD_VAL])
    return {"voc": str(voc), "sbd": str(sbd), "gt": gt, "tmp": tmp_path}


def _image_id(name):
    return int(name[:4]) * 1000000 + int(name[5:])


def _check_against_gt(coco, gt, expected):
    """``expected``: name -> source; every instance must decode exactly to the mask that was drawn."""
    assert [im["id"] for im in coco["images"]] == sorted(_image_id(n) for n in expected)
    by_image = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    for name, source in expected.items():
        anns = by_image.get(_image_id(name), [])
        drawn = gt[name][source]
        assert len(anns) == len(drawn), name
        for a, (m, c) in zip(anns, drawn):
            assert isinstance(a["segmentation"]["counts"], str)
            np.testing.assert_array_equal(mask_util.decode(a["segmentation"]).astype(bool), m)
            ys, xs = np.nonzero(m)
            assert a["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            assert a["bbox"] == mask_util.toBbox(a["segmentation"]).tolist()
            assert a["area"] == m.sum() and a["category_id"] == c and a["iscrowd"] == 0


def test_train_aug_rule(tree):
    items = voc_sbd_image_list("train_aug", tree["voc"], tree["sbd"])
    # VOC train ∪ SBD train ∪ SBD val, minus VOC val; VOC annotations win on overlap
    assert items == [(VOC_ONLY, "voc"), (OVERLAP, "voc"), (SBD_TRAIN, "sbd"), (SBD_VAL, "sbd")]
    coco, skipped = build_voc_sbd_coco("train_aug", tree["voc"], tree["sbd"], progress=False)
    assert skipped == []
    _check_against_gt(coco, tree["gt"], dict(items))
    assert [a["id"] for a in coco["annotations"]] == list(range(1, 8))
    im = coco["images"][0]
    assert im == {"id": 2007000001, "file_name": VOC_ONLY + ".jpg", "height": H, "width": W, "source": "voc"}
    assert coco["info"]["image_root"] == "VOC2012/JPEGImages"


def test_val_split_and_categories(tree):
    coco, _ = build_voc_sbd_coco("val", tree["voc"], progress=False)
    _check_against_gt(coco, tree["gt"], {VOC_VAL_IN_SBD: "voc", VOC_VAL: "voc"})
    assert [c["id"] for c in coco["categories"]] == list(range(1, 21))
    assert [c["name"] for c in coco["categories"]] == list(VOC_CLASSES)
    assert VOC_CLASSES[0] == "aeroplane" and VOC_CLASSES[14] == "person" and VOC_CLASSES[19] == "tvmonitor"


def test_void_pixels_belong_to_no_instance(tree):
    coco, _ = build_voc_sbd_coco("voc_train", tree["voc"], progress=False)
    obj = np.array(Image.open(os.path.join(tree["voc"], "SegmentationObject", VOC_ONLY + ".png")))
    assert (obj == 255).sum() > 0
    union = sum(mask_util.decode(a["segmentation"]).astype(int) for a in coco["annotations"]
                if a["image_id"] == _image_id(VOC_ONLY))
    assert union[obj == 255].sum() == 0 and union.max() == 1


def test_majority_class_vote(tree):
    m = _rect(2, 12, 2, 12)
    write_voc(tree["voc"], VOC_ONLY, [(m, 15)])
    cls_path = os.path.join(tree["voc"], "SegmentationClass", VOC_ONLY + ".png")
    cls = np.array(Image.open(cls_path))
    cls[2, 2:6] = 3  # a few stray pixels of another class
    _palette_png(cls_path, cls)
    coco, _ = build_voc_sbd_coco("voc_train", tree["voc"], progress=False)
    assert coco["annotations"][0]["category_id"] == 15


def test_parent_directories_and_sources_alone(tree):
    parent_voc, parent_sbd = os.path.dirname(tree["voc"]), os.path.dirname(tree["sbd"])
    both = build_voc_sbd_coco("train_aug", parent_voc, parent_sbd, progress=False)[0]
    assert both == build_voc_sbd_coco("train_aug", tree["voc"], tree["sbd"], progress=False)[0]
    coco, _ = build_voc_sbd_coco("sbd_train", sbd_root=tree["sbd"], progress=False)
    _check_against_gt(coco, tree["gt"], {OVERLAP: "sbd", VOC_VAL_IN_SBD: "sbd", SBD_TRAIN: "sbd"})
    assert coco["info"]["image_root"] == "dataset/img"
    coco, _ = build_voc_sbd_coco("sbd_val", sbd_root=tree["sbd"], progress=False)
    assert [im["id"] for im in coco["images"]] == [_image_id(SBD_VAL)]
    with pytest.raises(ValueError, match="needs the SBD root.*'voc_train'"):
        voc_sbd_image_list("train_aug", voc_root=tree["voc"])
    with pytest.raises(ValueError, match="needs the VOC root"):
        voc_sbd_image_list("val", sbd_root=tree["sbd"])
    with pytest.raises(ValueError, match="Unknown split"):
        voc_sbd_image_list("trainval", tree["voc"], tree["sbd"])


def test_sbd_mat_layouts(tree, tmp_path):
    masks, cats = load_sbd_instances(tree["sbd"], SBD_TRAIN)
    assert masks.shape == (3, H, W) and cats.tolist() == [2, 19, 2]
    # a single instance: Categories is 1×1
    write_sbd(tree["sbd"], SBD_VAL, [(_rect(3, 9, 3, 9), 11)])
    masks, cats = load_sbd_instances(tree["sbd"], SBD_VAL)
    assert cats.tolist() == [11]
    np.testing.assert_array_equal(masks[0], _rect(3, 9, 3, 9))


@pytest.mark.parametrize(
    "corrupt, pattern",
    [
        (lambda t: os.remove(os.path.join(t["sbd"], "inst", SBD_TRAIN + ".mat")),
         "inst/2008_000005.mat.*does not exist"),
        (lambda t: open(os.path.join(t["sbd"], "inst", SBD_TRAIN + ".mat"), "wb").write(b"not a mat file"),
         "Cannot read.*2008_000005.mat"),
        (lambda t: write_sbd(t["sbd"], SBD_TRAIN, [(_rect(0, 5, 0, 5), 21)]), "class id 21, outside 1..20"),
        (lambda t: write_sbd(t["sbd"], SBD_TRAIN, [(_rect(0, 5, 0, 5), 3)], categories=[3, 4]), "zero pixels"),
        (lambda t: os.remove(os.path.join(t["voc"], "JPEGImages", SBD_TRAIN + ".jpg")), "JPEGImages/2008_000005.jpg"),
        (lambda t: _jpeg(os.path.join(t["voc"], "JPEGImages", SBD_TRAIN + ".jpg"), h=31), "is 31x40 but its SBD"),
    ],
)
def test_bad_sbd_input(tree, corrupt, pattern):
    corrupt(tree)
    with pytest.raises(ConversionError, match=pattern) as err:
        build_voc_sbd_coco("train_aug", tree["voc"], tree["sbd"], progress=False)
    assert SBD_TRAIN in str(err.value)
    coco, skipped = build_voc_sbd_coco("train_aug", tree["voc"], tree["sbd"], skip_bad=True, progress=False)
    assert [s[0] for s in skipped] == [SBD_TRAIN]
    assert _image_id(SBD_TRAIN) not in [im["id"] for im in coco["images"]] and len(coco["images"]) == 3
    assert {a["image_id"] for a in coco["annotations"]} == {im["id"] for im in coco["images"]}


def test_bad_voc_input(tree):
    obj_path = os.path.join(tree["voc"], "SegmentationObject", OVERLAP + ".png")
    with open(obj_path, "wb") as f:
        f.write(b"garbage")
    # an instance drawn over background in SegmentationClass → class 0
    write_voc(tree["voc"], VOC_ONLY, [(_rect(2, 6, 2, 6), 15)])
    cls_path = os.path.join(tree["voc"], "SegmentationClass", VOC_ONLY + ".png")
    _palette_png(cls_path, np.zeros((H, W), np.uint8))
    with pytest.raises(ConversionError, match="2007_000001.png: instance 1 of image 2007_000001 has class id 0"):
        build_voc_sbd_coco("voc_train", tree["voc"], progress=False)
    summary = convert_voc_sbd(str(tree["tmp"] / "out" / "t.json"), "voc_train", tree["voc"], skip_bad=True,
                              progress=False)
    assert summary["num_images"] == 0 and [s[0] for s in summary["skipped"]] == [VOC_ONLY, OVERLAP]
    assert "Cannot read" in summary["skipped"][1][1] and obj_path in summary["skipped"][1][1]
    os.remove(obj_path)
    os.remove(cls_path)
    with pytest.raises(ConversionError, match="SegmentationClass/2007_000001.png for image 2007_000001 does not"):
        build_voc_sbd_coco("voc_train", tree["voc"], progress=False)


def test_deterministic_atomic_output_and_cli(tree):
    out_a, out_b = tree["tmp"] / "a" / "train_aug.json", tree["tmp"] / "b" / "train_aug.json"
    summary = convert_voc_sbd(str(out_a), "train_aug", tree["voc"], tree["sbd"], progress=False)
    assert summary["num_images"] == 4 and summary["num_annotations"] == 7 and summary["skipped"] == []
    assert summary["image_root"] == os.path.join(tree["voc"], "JPEGImages")
    cli = _load_tool("convert_voc_sbd")
    argv = ["--voc-root", tree["voc"], "--sbd-root", tree["sbd"], "--out", str(out_b), "--no-progress"]
    assert cli.main(argv) == 0
    assert out_a.read_bytes() == out_b.read_bytes()
    assert os.listdir(out_a.parent) == ["train_aug.json"]  # no temporary file left behind
    coco = json.loads(out_a.read_text())
    assert coco["images"][0]["file_name"] == VOC_ONLY + ".jpg"
    assert cli.main(["--voc-root", tree["voc"], "--out", str(out_b), "--no-progress"]) == 1  # train_aug without SBD
