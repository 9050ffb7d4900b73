"""The controlled copy-paste benchmark generator: consistency of every label with the pixels, determinism, no leak
between splits, bad inputs, the program; on synthetic sources with known colours and on the real shared data."""
import json
import os

import cv2
import numpy as np
import pytest

from wsis.core.boxes import mask_tight_box, xyxy_to_xywh
from wsis.core.masks import decode_mask, encode_mask, to_bool_mask
from wsis.data.coco_weak import load_coco_instances
from wsis.data.synthetic import CopyPasteConfig, CopyPasteError, build_copy_paste, largest_free_square

from conftest import COCO_TINY, SHARED_DATA, load_tool, write_coco

RED, GREEN, BLUE = (0, 0, 255), (0, 255, 0), (255, 0, 0)  # BGR: cat, dog, salient object
CATS = [{"id": 1, "name": "cat", "supercategory": "animal"}, {"id": 3, "name": "dog", "supercategory": "animal"},
        {"id": 5, "name": "bird", "supercategory": "animal"}]
H, W = 60, 80


def _triangle(x0, y0, x1, y1):
    """A right triangle (no mirror symmetry, so that a flip of the pixels without the mask shows)."""
    return [[x0, y1, x1, y1, x0, y0]]


def _split(root, split, first_id, gray0):
    """7 source images of one split; each has its own constant grey. Returns (json, image_root, grey per file)."""
    img_dir = root / split
    img_dir.mkdir(parents=True)
    images, anns, grays = [], [], {}
    layout = [  # (cats as RLE rectangles x0, y0, x1, y1; dog triangles; other annotations)
        ([(5, 5, 35, 25)], [(40, 10, 75, 50)], []),
        ([(10, 20, 50, 55), (70, 2, 73, 5)], [], []),  # the 3x3 cat is below min_cutout_pixels
        ([], [(2, 2, 40, 40), (45, 5, 78, 45)], [("bird", (50, 40, 70, 58))]),
        ([], [], [("crowd cat", (0, 0, 30, 30))]),  # a crowd of a chosen class: neither cut-out nor background
        ([], [], [("bird", (10, 10, 30, 30))]),  # backgrounds from here on (a bird is no chosen class)
        ([], [], []),
        ([], [], []),
    ]
    for k, (cats, dogs, others) in enumerate(layout):
        image_id, gray = first_id + k, gray0 + 10 * k
        name = f"{split}_{k}.png"
        img = np.full((H, W, 3), gray, np.uint8)
        grays[name] = gray
        for x0, y0, x1, y1 in cats:
            mask = np.zeros((H, W), bool)
            mask[y0:y1, x0:x1] = True
            img[mask] = RED
            anns.append({"category_id": 1, "segmentation": encode_mask(mask), "bbox": [x0, y0, x1 - x0, y1 - y0]})
        for x0, y0, x1, y1 in dogs:
            poly = _triangle(x0, y0, x1, y1)
            img[to_bool_mask(poly, H, W)] = GREEN  # exactly the pixels of the COCO polygon
            anns.append({"category_id": 3, "segmentation": poly, "bbox": [x0, y0, x1 - x0, y1 - y0]})
        for what, (x0, y0, x1, y1) in others:
            mask = np.zeros((H, W), bool)
            mask[y0:y1, x0:x1] = True
            anns.append({"category_id": 5 if what == "bird" else 1, "segmentation": encode_mask(mask),
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": int(what == "crowd cat")})
        for a in anns[len(anns) - len(cats) - len(dogs) - len(others):]:
            a.update(image_id=image_id, iscrowd=a.get("iscrowd", 0))
        cv2.imwrite(str(img_dir / name), img)
        images.append({"id": image_id, "file_name": name, "height": H, "width": W})
    for i, a in enumerate(anns):
        a["id"] = first_id * 100 + i
    return write_coco(root / f"{split}.json", images, anns, CATS), str(img_dir), grays


def _salient(root, n=6):
    """An ECSSD-like folder: n images with one blue ellipse each on grey 30."""
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i in range(1, n + 1):
        mask = np.zeros((50, 50), np.uint8)
        cv2.ellipse(mask, (25, 25), (10 + i, 15), 0, 0, 360, 255, -1)
        img = np.full((50, 50, 3), 30, np.uint8)
        img[mask > 0] = BLUE
        cv2.imwrite(str(root / "images" / f"{i:04d}.png"), img)
        cv2.imwrite(str(root / "masks" / f"{i:04d}.png"), mask)
    return str(root)


@pytest.fixture
def sources(tmp_path):
    train = _split(tmp_path / "src", "train", 10, 40)
    val = _split(tmp_path / "src", "val", 50, 120)
    return {"train": train[:2], "val": val[:2]}, {**train[2], **val[2]}


def _config(**kw):
    base = dict(seed=3, classes=("cat", "dog"), min_cutout_pixels=50, image_size=48, scale=(0.3, 0.7),
                min_visible_pixels=16, min_backgrounds=2, num_train=40, num_val=15, empty_fraction=0.15)
    return CopyPasteConfig(**{**base, **kw})


def _files(folder):
    out = {}
    for root, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(root, n)
            out[os.path.relpath(p, folder)] = open(p, "rb").read()
    return out


def check_split(out, split, colors=None, grays=None):
    """Every consistency rule of one built split; returns its COCO dict."""
    coco = json.load(open(os.path.join(out, "annotations", f"instances_{split}.json")))
    contiguous = {c["id"]: i for i, c in enumerate(coco["categories"])}
    assert [c["id"] for c in coco["categories"]] == sorted(contiguous)
    by_image = {img["id"]: [] for img in coco["images"]}
    for a in coco["annotations"]:
        by_image[a["image_id"]].append(a)
    for img in coco["images"]:
        pixels = cv2.imread(os.path.join(out, split, img["file_name"]), cv2.IMREAD_UNCHANGED)
        sem = cv2.imread(os.path.join(out, "semantic", split, f"{img['id']}.png"), cv2.IMREAD_UNCHANGED)
        assert pixels.shape == (img["height"], img["width"], 3) and sem.dtype == np.uint8
        expected = np.zeros(sem.shape, np.uint8)
        union = np.zeros(sem.shape, bool)
        for a in by_image[img["id"]]:
            m = decode_mask(a["segmentation"])
            assert isinstance(a["segmentation"]["counts"], str) and m.any() and a["iscrowd"] == 0
            assert a["area"] == m.sum() and a["bbox"] == xyxy_to_xywh(mask_tight_box(m))
            assert not (union & m).any(), f"image {img['id']}: visible masks overlap"
            assert a["area"] >= 16 and a["source"]["pasted_area"] >= a["area"]
            union |= m
            expected[m] = contiguous[a["category_id"]] + 1
            if colors:
                pure = np.all(pixels == colors[a["category_id"]], axis=-1)
                core = cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2) > 0
                assert core.sum() < 5 or pure[core].mean() > 0.9, f"image {img['id']} ann {a['id']}: not its own colour"
        assert np.array_equal(sem, expected)
        if colors and 1 in colors:  # cats are rectangles, pasted exactly: the pure red pixels are their masks
            cats = [decode_mask(a["segmentation"]) for a in by_image[img["id"]] if a["category_id"] == 1]
            assert np.array_equal(np.all(pixels == RED, axis=-1), np.logical_or.reduce([np.zeros_like(union)] + cats))
        assert img["image_labels"] == sorted({a["category_id"] for a in by_image[img["id"]]})
        if grays:  # outside the visible masks: the background's own grey, untouched (hard alpha)
            assert np.all(pixels[~union] == grays[img["background"]["file"]])
    return coco


def test_build_is_consistent_and_splits_do_not_leak(sources, tmp_path):
    srcs, grays = sources
    summary = build_copy_paste(srcs, _config(), str(tmp_path / "out"), progress=False)
    out = str(tmp_path / "out")
    assert sorted(os.listdir(out)) == ["README.md", "annotations", "params.json", "semantic", "train", "val"]
    colors = {1: RED, 3: GREEN}
    for split, n in (("train", 40), ("val", 15)):
        coco = check_split(out, split, colors, grays)
        assert len(coco["images"]) == n == len(os.listdir(os.path.join(out, split)))
        assert [c["name"] for c in coco["categories"]] == ["cat", "dog"]
        # cut-outs and backgrounds of a split come from its own source; backgrounds are the 3 clean images
        assert {a["source"]["source_file"].split("_")[0] for a in coco["annotations"]} == {split}
        assert {img["background"]["file"] for img in coco["images"]} <= {f"{split}_{k}.png" for k in (4, 5, 6)}
        assert all(a["source"]["source_id"] % 100 != 3 for a in coco["annotations"])  # the 3x3 cat: too small
        assert any(not img["image_labels"] for img in coco["images"])  # untagged images exist
        assert {a["category_id"] for a in coco["annotations"]} == {1, 3}
    anns = json.load(open(os.path.join(out, "annotations", "instances_train.json")))["annotations"]
    assert any(a["area"] < a["source"]["pasted_area"] for a in anns)  # occlusion happened, and was handled
    assert all(a["area"] >= 0.3 * a["source"]["pasted_area"] for a in anns)  # min_visible_fraction
    assert summary["splits"]["train"]["cutouts_per_class"] == {"cat": 2, "dog": 3}
    assert summary["splits"]["train"]["instances"] == len(anns)
    readme = open(os.path.join(out, "README.md")).read()
    assert "never a substitute for VOC/COCO figures" in readme and "json_sha256" not in readme
    params = json.load(open(os.path.join(out, "params.json")))
    assert params["config"]["seed"] == 3 and len(params["sources"]["train"]["json_sha256"]) == 64
    assert params["sources"]["train"]["json_sha256"] in readme


def test_no_overlap_allowed_leaves_every_object_whole(sources, tmp_path):
    build_copy_paste(sources[0], _config(max_overlap=0.0, objects_per_image=(3, 3)), str(tmp_path / "o"),
                     progress=False)
    anns = json.load(open(tmp_path / "o" / "annotations" / "instances_train.json"))["annotations"]
    assert anns and all(a["area"] == a["source"]["pasted_area"] for a in anns)


def test_occluded_objects_keep_their_minimum_visible_part(sources, tmp_path):
    cfg = _config(max_overlap=1.0, min_visible_fraction=0.6, objects_per_image=(4, 4), num_val=0)
    build_copy_paste(sources[0], cfg, str(tmp_path / "o"), progress=False)
    anns = check_split(str(tmp_path / "o"), "train", {1: RED, 3: GREEN}, sources[1])["annotations"]
    assert any(a["area"] < a["source"]["pasted_area"] for a in anns)
    assert all(a["area"] >= 0.6 * a["source"]["pasted_area"] for a in anns)


def test_loads_with_load_coco_instances(sources, tmp_path):
    out = tmp_path / "out"
    build_copy_paste(sources[0], _config(), str(out), progress=False)
    coco = json.load(open(out / "annotations" / "instances_val.json"))
    for supervision in ("mask", "tag"):
        dicts, meta = load_coco_instances(str(out / "annotations" / "instances_val.json"), str(out / "val"),
                                          supervision=supervision, on_bad="error", check_images=True)
        assert meta["thing_classes"] == ["cat", "dog"] and len(dicts) == 15
        for d, img in zip(dicts, coco["images"]):
            assert d["image_labels"] == [meta["thing_dataset_id_to_contiguous_id"][c] for c in img["image_labels"]]
            if supervision == "mask":
                sem = cv2.imread(str(out / "semantic" / "val" / f"{d['image_id']}.png"), cv2.IMREAD_UNCHANGED)
                for a in d["annotations"]:
                    m = decode_mask(a["segmentation"])
                    assert a["mask_valid"] and np.all(sem[m] == a["category_id"] + 1)
            else:
                assert d["annotations"] == [] and d["supervision"] == "tag"


def test_same_inputs_give_the_same_bytes(sources, tmp_path):
    cfg = _config(salient_root=_salient(tmp_path / "sal"), salient_train_max_id=3)
    a, b, c = (str(tmp_path / n) for n in "abc")
    build_copy_paste(sources[0], cfg, a, progress=False)
    build_copy_paste(sources[0], cfg, b, progress=False)
    fa, fb = _files(a), _files(b)
    assert len(fa) == 2 * (40 + 15) + 4 and fa == fb
    build_copy_paste(sources[0], _config(seed=4, salient_root=cfg.salient_root, salient_train_max_id=3), c,
                     progress=False)
    fc = _files(c)
    assert fc["train/000001.png"] != fa["train/000001.png"] and fc.keys() == fa.keys()
    # the salient class: a new id after the source's, its objects from its split's images only, its own pixels
    coco = {s: check_split(a, s, {1: RED, 3: GREEN, 6: BLUE}, sources[1]) for s in ("train", "val")}
    assert coco["train"]["categories"][-1] == {"id": 6, "name": "salient object", "supercategory": "salient"}
    for split, ok in (("train", lambda i: i <= 3), ("val", lambda i: i > 3)):
        ids = [x["source"]["source_id"] for x in coco[split]["annotations"] if x["category_id"] == 6]
        assert ids and all(ok(i) for i in ids)


def test_background_crops_avoid_every_chosen_class_box(sources, tmp_path):
    cfg = _config(background_mode="crops", min_background_side=20)
    build_copy_paste(sources[0], cfg, str(tmp_path / "o"), progress=False)
    coco = json.load(open(tmp_path / "o" / "annotations" / "instances_train.json"))
    src = json.load(open(sources[0]["train"][0]))
    names = {i["id"]: i["file_name"] for i in src["images"]}
    boxes = {}
    for a in src["annotations"]:
        if a["category_id"] in (1, 3):
            boxes.setdefault(names[a["image_id"]], []).append(a["bbox"])
    kinds = {img["background"]["kind"] for img in coco["images"]}
    assert kinds == {"image", "crop"}
    for img in coco["images"]:
        x0, y0, x1, y1 = img["background"]["box"]
        for bx, by, bw, bh in boxes.get(img["background"]["file"], []):
            assert x1 <= bx or bx + bw <= x0 or y1 <= by or by + bh <= y0, img["background"]


def test_largest_free_square():
    blocked = np.zeros((6, 9), bool)
    assert largest_free_square(blocked) == (0, 0, 6)
    blocked[:, 2] = True
    assert largest_free_square(blocked) == (3, 0, 6)
    blocked[3, 6] = True
    assert largest_free_square(blocked) == (3, 0, 3)
    assert largest_free_square(np.ones((4, 4), bool)) is None


def test_classes_by_number(sources, tmp_path):
    # train: 2 usable cats, 3 dogs; val the same
    s = build_copy_paste(sources[0], _config(classes=1, min_class_instances=2, exclude_classes=()),
                         str(tmp_path / "a"), progress=False)
    assert s["classes"] == ["dog"]
    s = build_copy_paste(sources[0], _config(classes=2, min_class_instances=2, exclude_classes=()),
                         str(tmp_path / "b"), progress=False)
    assert s["classes"] == ["cat", "dog"]  # by category id
    s = build_copy_paste(sources[0], _config(classes=1, min_class_instances=2, exclude_classes=("dog",)),
                         str(tmp_path / "c"), progress=False)
    assert s["classes"] == ["cat"]
    with pytest.raises(CopyPasteError, match="only 1 classes .*dog.* 2 were asked"):
        build_copy_paste(sources[0], _config(classes=2, min_class_instances=3, exclude_classes=()),
                         str(tmp_path / "d"), progress=False)


def test_bad_inputs_give_one_line_errors(sources, tmp_path):
    srcs = sources[0]
    cases = [
        ({**srcs, "val": (str(tmp_path / "missing.json"), srcs["val"][1])}, _config(), "missing.json: file not found"),
        (srcs, _config(classes=("cat", "zebra")), r"train.json: class 'zebra' is not one of its categories"),
        (srcs, _config(min_backgrounds=4), r"train.json: only 3 usable backgrounds without cat, dog \(need 4"),
        (srcs, _config(min_cutout_pixels=5000), r"no usable cut-out of class 'cat' \(id 1"),
        ({"test": srcs["train"]}, _config(), "sources must map"),
    ]
    (tmp_path / "bad.json").write_text("{not json")
    cases.append(({"train": (str(tmp_path / "bad.json"), srcs["train"][1])}, _config(), "bad.json: malformed json"))
    for src, cfg, message in cases:
        with pytest.raises(ValueError, match=message) as e:
            build_copy_paste(src, cfg, str(tmp_path / "never"), progress=False)
        assert "\n" not in str(e.value)
    assert not (tmp_path / "never").exists()
    with pytest.raises(CopyPasteError, match="scale"):
        _config(scale=(0.5, 0.2))


def test_unreadable_source_images_are_skipped_and_counted(sources, tmp_path, caplog):
    srcs = sources[0]
    root = srcs["train"][1]
    open(os.path.join(root, "train_0.png"), "wb").write(b"broken")  # a cut-out source image
    open(os.path.join(root, "train_5.png"), "wb").write(b"broken")  # a background
    s = build_copy_paste(srcs, _config(min_backgrounds=2), str(tmp_path / "o"), progress=False)
    assert s["skipped"]["counts"] == {"unreadable image": 2}
    assert "image id 10 (" in caplog.text and "skipped 2 unreadable image" in caplog.text
    coco = check_split(str(tmp_path / "o"), "train")
    used = {a["source"]["source_file"] for a in coco["annotations"]} | {i["background"]["file"] for i in coco["images"]}
    assert not used & {"train_0.png", "train_5.png"}
    assert s["splits"]["train"]["cutouts_per_class"] == {"cat": 1, "dog": 2}


def test_existing_output_is_refused_without_overwrite(sources, tmp_path):
    out = str(tmp_path / "o")
    build_copy_paste(sources[0], _config(), out, progress=False)
    before = _files(out)
    with pytest.raises(CopyPasteError, match="exists and is not empty; pass --overwrite"):
        build_copy_paste(sources[0], _config(), out, progress=False)
    open(os.path.join(out, "train", "stale.png"), "wb").write(b"x")
    build_copy_paste(sources[0], _config(), out, progress=False, overwrite=True)
    assert _files(out) == before  # stale files are gone, the same bytes again
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(CopyPasteError, match="holds 'keep.txt', not a copy-paste output"):
        build_copy_paste(sources[0], _config(), str(tmp_path / "other"), progress=False, overwrite=True)
    assert (tmp_path / "other" / "keep.txt").read_text() == "mine"


def test_program(sources, tmp_path, capsys):
    (train_json, train_root), (val_json, val_root) = sources[0]["train"], sources[0]["val"]
    argv = ["--train-json", train_json, "--train-images", train_root, "--val-json", val_json, "--val-images",
            val_root, "--classes", "cat,dog", "--no-salient", "--num-train", "12", "--num-val", "5", "--size", "48",
            "--min-cutout-pixels", "50", "--min-backgrounds", "2", "--min-visible-pixels", "16", "--no-progress",
            "--out", str(tmp_path / "o")]
    summary = load_tool("make_copy_paste").main(argv)
    printed = capsys.readouterr().out
    assert "never a substitute for VOC/COCO figures" in printed and summary["splits"]["val"]["images"] == 5
    assert "  cat" in printed and "skipped source images: none" in printed
    check_split(str(tmp_path / "o"), "train", {1: RED, 3: GREEN}, sources[1])
    with pytest.raises(SystemExit, match="^error: .*pass --overwrite"):
        load_tool("make_copy_paste").main(argv)
    with pytest.raises(SystemExit, match="^error: .*class 'zebra'"):
        load_tool("make_copy_paste").main(argv[:-1] + [str(tmp_path / "p"), "--classes", "zebra"])


def test_real_shared_data(tmp_path):
    train_json = os.path.join(COCO_TINY, "annotations", "instances_train2017.json")
    ecssd = os.path.join(SHARED_DATA, "ecssd")
    if not os.path.isfile(train_json) or not os.path.isdir(ecssd):
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    srcs = {"train": (train_json, os.path.join(COCO_TINY, "train2017")),
            "val": (os.path.join(COCO_TINY, "annotations", "instances_val2017.json"), os.path.join(COCO_TINY,
                                                                                                  "val2017"))}
    cfg = CopyPasteConfig(num_train=30, num_val=10, salient_root=ecssd)
    summary = build_copy_paste(srcs, cfg, str(tmp_path / "o"), progress=False)
    assert summary["classes"] == ["car", "bottle", "bowl", "chair", "salient object"]
    assert summary["skipped"]["counts"] == {}
    for split in ("train", "val"):
        coco = check_split(str(tmp_path / "o"), split)
        assert coco["categories"][-1]["id"] == 91 and len(coco["annotations"]) >= len(coco["images"])
        dicts, meta = load_coco_instances(os.path.join(tmp_path, "o", "annotations", f"instances_{split}.json"),
                                          os.path.join(tmp_path, "o", split), on_bad="error", check_images=True)
        assert len(dicts) == len(coco["images"]) and meta["thing_classes"][-1] == "salient object"
        # no leak: every COCO cut-out and background is an image of the split's own source
        own = {i["file_name"] for i in json.load(open(srcs[split][0]))["images"]}
        coco_files = {a["source"]["source_file"] for a in coco["annotations"] if a["category_id"] != 91}
        assert coco_files <= own and {i["background"]["file"] for i in coco["images"]} <= own
