"""The COCO panoptic → things + stuff halves converter, on the real shared coco_panoptic_val100: the split, every
annotation against the panoptic PNG, the tags, the semantic maps (hand-checked pixels), loading, bad inputs, reruns
and the program."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from wsis.core.masks import decode_mask
from wsis.data.coco_weak import load_coco_instances
from wsis.cli.convert_coco_panoptic import DEFAULT_ROOT
from wsis.data.converters import ConversionError, convert_panoptic_halves, split_image_ids

from conftest import SHARED_DATA, load_tool

PANOPTIC = os.path.join(SHARED_DATA, "coco_panoptic_val100")
JSON = os.path.join(PANOPTIC, "annotations", "panoptic_val2017.json")
PNGS = os.path.join(PANOPTIC, "annotations", "panoptic_val2017")
IMAGES = os.path.join(PANOPTIC, "images")
SPLITS = ("train", "val")

pytestmark = pytest.mark.skipif(not os.path.isfile(JSON), reason=f"shared data not found at {PANOPTIC}")


def _ids(png):
    """Segment ids of a panoptic PNG, decoded here (not by the code under test): R + 256 G + 65536 B."""
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def _coco(out, split):
    with open(os.path.join(out, "annotations", f"instances_{split}.json")) as f:
        return json.load(f)


def _sem(out, split, image_id):
    return np.asarray(Image.open(os.path.join(out, "semantic", split, f"{image_id}.png")))


def _stats(folder):
    """(relative path → lstat mtime_ns and bytes or link target) of every entry under ``folder``."""
    out = {}
    for root, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(root, n)
            body = os.readlink(p) if os.path.islink(p) else open(p, "rb").read()
            out[os.path.relpath(p, folder)] = (os.lstat(p).st_mtime_ns, body)
    return out


@pytest.fixture(scope="module")
def source():
    with open(JSON) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("halves") / "out")
    result = convert_panoptic_halves(JSON, PNGS, IMAGES, out, progress=False)
    assert result["written"]
    return out, result


def test_split_is_deterministic_disjoint_and_covers_every_image(converted, source):
    out, result = converted
    assert split_image_ids([9, 1, 5, 3, 7]) == split_image_ids([1, 3, 5, 7, 9]) == {"train": [1, 3, 5], "val": [7, 9]}
    ids = {s: [img["id"] for img in _coco(out, s)["images"]] for s in SPLITS}
    every = sorted(img["id"] for img in source["images"])
    assert len(ids["train"]) == len(ids["val"]) == 50 and ids["train"] + ids["val"] == every
    assert max(ids["train"]) < min(ids["val"])
    assert result["summary"]["splits"]["val"]["image_id_range"] == [every[50], every[-1]]
    for split in SPLITS:  # the images are links to the shared files, never copies
        names = sorted(img["file_name"] for img in _coco(out, split)["images"])
        assert sorted(os.listdir(os.path.join(out, split))) == names
        for n in names:
            link = os.path.join(out, split, n)
            assert os.path.islink(link) and os.readlink(link) == os.path.join(os.path.abspath(IMAGES), n)
        assert sorted(os.listdir(os.path.join(out, "semantic", split))) == sorted(f"{i}.png" for i in ids[split])


def test_every_annotation_is_its_segment_exactly(converted, source):
    out, _ = converted
    pans = {a["image_id"]: a for a in source["annotations"]}
    for split in SPLITS:
        coco = _coco(out, split)
        anns = {}
        for a in coco["annotations"]:
            anns.setdefault(a["image_id"], []).append(a)
        assert [a["id"] for a in coco["annotations"]] == list(range(1, len(coco["annotations"]) + 1))
        for img in coco["images"]:
            pan = pans[img["id"]]
            ids = _ids(os.path.join(PNGS, pan["file_name"]))
            mine = anns[img["id"]]
            assert [a["segment_id"] for a in mine] == [s["id"] for s in pan["segments_info"]]
            for a, s in zip(mine, pan["segments_info"]):
                assert isinstance(a["segmentation"]["counts"], str)
                assert np.array_equal(decode_mask(a["segmentation"]), ids == s["id"])
                # panopticapi's own area and box of the segment
                assert (a["category_id"], a["iscrowd"], a["area"], a["bbox"]) == (
                    s["category_id"], s["iscrowd"], s["area"], s["bbox"])
            # tags: the categories of the non-crowd segments (things and stuff)
            assert img["image_labels"] == sorted({s["category_id"] for s in pan["segments_info"] if not s["iscrowd"]})
    total = sum(len(a["segments_info"]) for a in source["annotations"])
    assert sum(len(_coco(out, s)["annotations"]) for s in SPLITS) == total == 1078


def test_semantic_maps(converted, source):
    out, _ = converted
    label = {c: i + 1 for i, c in enumerate(sorted(c["id"] for c in source["categories"]))}
    pans = {a["image_id"]: a for a in source["annotations"]}
    # hand-checked pixels (y, x): image 139 (train, a living room), 2299 (train, crowd), 7511 (val, a beach, crowd)
    checks = {("train", 139): {(5, 5): 132,  # wall-other-merged (id 199, the 132nd category)
                               (400, 100): 88,  # floor-wood (id 118)
                               (250, 600): 63,  # tv (id 72)
                               (230, 440): 1,  # person
                               (102, 604): 255},  # void (id 0)
              ("train", 2299): {(123, 485): 255},  # the crowd of persons
              ("val", 7511): {(100, 320): 120, (400, 100): 103, (282, 599): 255}}  # sky-other-merged, sand, crowd
    for (split, image_id), pixels in checks.items():
        sem = _sem(out, split, image_id)
        assert sem.dtype == np.uint8 and {k: int(sem[k]) for k in pixels} == pixels
    for split in SPLITS:
        for img in _coco(out, split)["images"]:
            pan = pans[img["id"]]
            ids = _ids(os.path.join(PNGS, pan["file_name"]))
            expected = np.full(ids.shape, 255, np.uint8)
            for s in pan["segments_info"]:
                expected[ids == s["id"]] = 255 if s["iscrowd"] else label[s["category_id"]]
            sem = _sem(out, split, img["id"])
            assert np.array_equal(sem, expected) and 0 not in sem


def test_stuff_is_there(converted):
    out, result = converted
    s = result["summary"]
    assert (s["categories"], s["thing_categories"], s["stuff_categories"]) == (133, 80, 53)
    for split in SPLITS:
        coco = _coco(out, split)
        stuff = {c["id"] for c in coco["categories"] if not c["isthing"]}
        assert len(coco["categories"]) == 133 and len(stuff) == 53
        anns = [a for a in coco["annotations"] if a["category_id"] in stuff]
        assert len(anns) == s["splits"][split]["stuff_annotations"] > 100 and not any(a["iscrowd"] for a in anns)
        assert s["splits"][split]["stuff_categories_present"] >= 40
        assert any(set(img["image_labels"]) & stuff for img in coco["images"])
    assert [s["splits"][k]["images"] for k in SPLITS] == [50, 50]
    assert sum(s["splits"][k][f"{kind}_annotations"] for k in SPLITS for kind in ("thing", "stuff", "crowd")) == 1078


def test_loads_with_load_coco_instances(converted, source):
    out, _ = converted
    names = [c["name"] for c in sorted(source["categories"], key=lambda c: c["id"])]
    for split in SPLITS:
        ann_file, root = os.path.join(out, "annotations", f"instances_{split}.json"), os.path.join(out, split)
        dicts, meta = load_coco_instances(ann_file, root, on_bad="error", check_images=True)
        assert len(dicts) == 50 and meta["thing_classes"] == names and len(names) == 133
        for d in dicts:
            sem = _sem(out, split, d["image_id"])
            assert d["image_labels"] == sorted({a["category_id"] for a in d["annotations"] if not a["iscrowd"]})
            for a in d["annotations"]:  # the loader's contiguous ids are the semantic maps' labels - 1
                assert a["mask_valid"]
                assert np.all(sem[decode_mask(a["segmentation"])] == (255 if a["iscrowd"] else a["category_id"] + 1))
        tags, _ = load_coco_instances(ann_file, root, supervision="tag")
        assert [t["image_labels"] for t in tags] == [d["image_labels"] for d in dicts]
        assert all(t["annotations"] == [] and t["image_labels"] for t in tags)


def _corrupt(tmp_path, edit=None, drop_png=None, png=None):
    """A copy of the panoptic set (PNGs copied, json edited by ``edit``); returns (json, png folder)."""
    pngs = tmp_path / "pngs"
    shutil.copytree(PNGS, pngs)
    if drop_png:
        os.remove(pngs / drop_png)
    if png:
        png(pngs)
    with open(JSON) as f:
        data = json.load(f)
    if edit:
        edit(data)
    with open(tmp_path / "pan.json", "w") as f:
        json.dump(data, f)
    return str(tmp_path / "pan.json"), str(pngs)


def _seg(data, image_id, k=0):
    return next(a for a in data["annotations"] if a["image_id"] == image_id)["segments_info"][k]


@pytest.mark.parametrize("case, message", [
    ("missing png", r"pngs/000000000632.png: panoptic PNG of image id 632 not found"),
    ("absent segment", r"pngs/000000000632.png: segment id 123456 \(category 62\) of image id 632 has no pixels"),
    ("unknown category", r"pan.json: segment id 3223341 of image id 632 .*000000000632.png\) has unknown category "
                         r"id 1000"),
    ("other size", r"pngs/000000000632.png: 8x4 PNG for the 640x483 image id 632"),
    ("no annotation", r"pan.json: image id 632 \(000000000632.jpg\) has no panoptic annotation"),
])
def test_bad_inputs_give_one_line_errors(tmp_path, case, message):
    edits = {"absent segment": lambda d: _seg(d, 632).update(id=123456),
             "unknown category": lambda d: _seg(d, 632).update(category_id=1000),
             "no annotation": lambda d: d.update(annotations=[a for a in d["annotations"] if a["image_id"] != 632])}
    small = (lambda p: Image.fromarray(np.zeros((4, 8, 3), np.uint8)).save(p / "000000000632.png")
             if case == "other size" else None)
    pan_json, pngs = _corrupt(tmp_path, edits.get(case), "000000000632.png" if case == "missing png" else None, small)
    out = tmp_path / "out"
    with pytest.raises(ConversionError, match=message) as e:
        convert_panoptic_halves(pan_json, pngs, IMAGES, str(out), progress=False)
    assert "\n" not in str(e.value)
    if case in ("missing png", "unknown category", "no annotation"):  # found before anything is written
        assert not out.exists()
    else:  # found while converting: the output is incomplete (no params.json) and is built again next time
        assert not (out / "params.json").exists()
    with pytest.raises(SystemExit, match="^error: .*image id 632"):  # the program: one line, no traceback
        load_tool("convert_coco_panoptic").main(["--json", pan_json, "--panoptic-root", pngs, "--images", IMAGES,
                                                 "--out", str(tmp_path / "out2"), "--no-progress"])


def test_a_category_only_in_a_crowd_is_no_tag(tmp_path):
    pan_json = str(tmp_path / "pan.json")
    with open(JSON) as f:
        data = json.load(f)
    # image 632's crowd of books becomes a crowd of kites (id 38), a class it has no other segment of
    segments = next(a for a in data["annotations"] if a["image_id"] == 632)["segments_info"]
    next(s for s in segments if s["iscrowd"])["category_id"] = 38
    with open(pan_json, "w") as f:
        json.dump(data, f)
    out = str(tmp_path / "out")
    convert_panoptic_halves(pan_json, PNGS, IMAGES, out, progress=False)
    coco = _coco(out, "train")
    img = next(i for i in coco["images"] if i["id"] == 632)
    kites = [a for a in coco["annotations"] if a["image_id"] == 632 and a["category_id"] == 38]
    assert len(kites) == 1 and kites[0]["iscrowd"] == 1 and 38 not in img["image_labels"]
    assert 84 in img["image_labels"]  # its other books
    assert np.all(_sem(out, "train", 632)[decode_mask(kites[0]["segmentation"])] == 255)


def test_malformed_json(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: malformed json"):
        convert_panoptic_halves(str(tmp_path / "bad.json"), PNGS, IMAGES, str(tmp_path / "o"), progress=False)


def test_running_again_does_nothing(tmp_path):
    out = str(tmp_path / "out")
    first = convert_panoptic_halves(JSON, PNGS, IMAGES, out, progress=False)
    before = _stats(out)
    again = convert_panoptic_halves(JSON, PNGS, IMAGES, out, progress=False)
    assert not again["written"] and again["summary"] == first["summary"] and _stats(out) == before
    # other settings are refused unless overwrite; overwrite rebuilds the same content
    with pytest.raises(ConversionError, match="other settings .*pass --overwrite"):
        convert_panoptic_halves(JSON, PNGS, IMAGES, out, splits=("a", "b"), progress=False)
    convert_panoptic_halves(JSON, PNGS, IMAGES, out, splits=("a", "b", "c"), overwrite=True, progress=False)
    assert sorted(os.listdir(out)) == ["a", "annotations", "b", "c", "params.json", "semantic"]
    assert [len(_coco(out, s)["images"]) for s in "abc"] == [34, 33, 33]
    convert_panoptic_halves(JSON, PNGS, IMAGES, out, overwrite=True, progress=False)
    assert {k: v[1] for k, v in _stats(out).items()} == {k: v[1] for k, v in before.items()}
    # an incomplete output (a killed run: no params.json) is built again
    os.remove(os.path.join(out, "params.json"))
    os.remove(os.path.join(out, "semantic", "val", "9891.png"))
    assert convert_panoptic_halves(JSON, PNGS, IMAGES, out, progress=False)["written"]
    assert {k: v[1] for k, v in _stats(out).items()} == {k: v[1] for k, v in before.items()}
    # a folder holding anything else is never cleared
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(ConversionError, match="holds 'keep.txt', not an output of this converter"):
        convert_panoptic_halves(JSON, PNGS, IMAGES, str(tmp_path / "other"), progress=False)
    assert (tmp_path / "other" / "keep.txt").read_text() == "mine"


def test_program(tmp_path, capsys):
    tool = load_tool("convert_coco_panoptic")
    args = tool.parse_args([])
    default = os.path.join(DEFAULT_ROOT, "coco_panoptic_val100")  # $WSIS_DATASETS, else ../shared/data
    assert (args.json, args.panoptic_root, args.images) == (
        os.path.join(default, "annotations", "panoptic_val2017.json"),
        os.path.join(default, "annotations", "panoptic_val2017"), os.path.join(default, "images"))
    assert args.out == os.path.join("datasets", "coco_panoptic_val100_halves")
    out = str(tmp_path / "o")
    result = tool.main(["--source", PANOPTIC, "--out", out, "--no-progress"])
    printed = capsys.readouterr().out
    assert result["written"] and "133 categories (80 things + 53 stuff)" in printed
    assert printed.splitlines()[2].split() == ["images", "50", "50"]
    assert not tool.main(["--source", PANOPTIC, "--out", out, "--no-progress"])["written"]
    assert "is up to date (nothing written)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="^error: .*other settings.*--overwrite"):
        tool.main(["--source", PANOPTIC, "--out", out, "--no-progress", "--splits", "a,b"])
