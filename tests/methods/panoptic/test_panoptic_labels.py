"""tools/make_panoptic_labels.py: panoptic PNG + json from boxes (and cues), PQ, resume, refusal, skips."""
import json
import os

import cv2
import numpy as np
import pytest

from wsis.core.masks import encode_mask
from wsis.core.panoptic import panoptic_rgb_to_id
from wsis.methods.panoptic.pseudo_labels import stuff_label_map

from conftest import load_tool, write_coco

CATEGORIES = [{"id": 1, "name": "ball", "isthing": 1}, {"id": 90, "name": "grass", "isthing": 0}]


def disc_set(tmp_path, missing_image=False):
    """Two images: a red ball (thing, with its box) on green grass (stuff); one annotation per segment."""
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    images, anns = [], []
    rng = np.random.RandomState(0)
    for k, (cx, cy) in enumerate(((40, 30), (70, 50)), 1):
        img = np.clip(np.array([40, 150, 40]) + rng.randint(-20, 20, (80, 120, 3)), 0, 255).astype(np.uint8)
        cv2.circle(img, (cx, cy), 18, (40, 40, 210), -1)
        if not (missing_image and k == 2):
            cv2.imwrite(str(img_dir / f"{k}.jpg"), img)
        ball = np.zeros((80, 120), np.uint8)
        cv2.circle(ball, (cx, cy), 18, 1, -1)
        ys, xs = np.nonzero(ball)
        images.append({"id": k, "file_name": f"{k}.jpg", "height": 80, "width": 120})
        anns.append({"id": 2 * k, "image_id": k, "category_id": 1, "iscrowd": 0, "segmentation": encode_mask(ball),
                     "bbox": [float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()),
                              float(ys.max() + 1 - ys.min())]})
        anns.append({"id": 2 * k + 1, "image_id": k, "category_id": 90, "iscrowd": 0,
                     "segmentation": encode_mask(ball == 0), "bbox": [0.0, 0.0, 120.0, 80.0]})
    return write_coco(tmp_path / "panoptic_like.json", images, anns, CATEGORIES), str(img_dir)


def test_things_only_labels_format_quality_and_resume(tmp_path):
    json_file, images = disc_set(tmp_path)
    out = str(tmp_path / "out")
    tool = load_tool("make_panoptic_labels")
    common = ["--json", json_file, "--images", images, "--out", out, "--no-progress", "--workers", "1"]
    metrics = tool.main(common + ["--no-cues"])
    assert metrics["num_images"] == 2 and metrics["PQ_th"] > 80 and metrics["PQ_st"] == 0.0
    pan = json.load(open(os.path.join(out, "panoptic.json")))
    assert [c["id"] for c in pan["categories"]] == [1, 90] and [a["image_id"] for a in pan["annotations"]] == [1, 2]
    segs = pan["annotations"][0]["segments_info"]
    assert [(s["category_id"], s["iscrowd"]) for s in segs] == [(1, 0)]
    ids = panoptic_rgb_to_id(cv2.imread(os.path.join(out, "1.png"))[:, :, ::-1])
    assert set(np.unique(ids).tolist()) == {0, segs[0]["id"]} and (ids == segs[0]["id"]).sum() == segs[0]["area"]
    x, y, w, h = segs[0]["bbox"]
    assert abs(x - 22) <= 2 and abs(w - 37) <= 3  # the ball: centre 40, radius 18
    before = {f: os.path.getmtime(os.path.join(out, f)) for f in ("1.png", "2.png")}
    os.remove(os.path.join(out, "2.png"))  # as if killed before image 2's PNG
    again = tool.main(common + ["--no-cues"])
    assert again == metrics and os.path.getmtime(os.path.join(out, "1.png")) == before["1.png"]
    with pytest.raises(SystemExit, match="other settings"):
        tool.main(common + ["--no-cues", "WSIS.PSEUDO.WSPS.REFINE", "none"])
    assert tool.main(common + ["--no-cues", "--overwrite", "WSIS.PSEUDO.WSPS.REFINE", "none"])["num_images"] == 2


def test_shards_into_one_folder_then_a_last_run_equal_a_single_run(tmp_path):
    json_file, images = disc_set(tmp_path)
    tool = load_tool("make_panoptic_labels")

    def run(out, *extra):
        return tool.main(["--json", json_file, "--images", images, "--out", str(tmp_path / out), "--no-progress",
                          "--workers", "1", "--no-cues", *extra])

    single = run("single")
    first = run("sharded", "--num-shards", "2", "--shard-index", "1")
    assert first["num_images"] == 1  # image 2 only
    pan = json.load(open(tmp_path / "sharded" / "panoptic.json"))
    assert [a["image_id"] for a in pan["annotations"]] == [2]
    run("sharded", "--num-shards", "2", "--shard-index", "0")
    assert run("sharded") == single  # nothing left to make: the final panoptic.json and metrics
    for f in ("panoptic.json", "1.png", "2.png", "segments/1.json"):
        assert (tmp_path / "single" / f).read_bytes() == (tmp_path / "sharded" / f).read_bytes(), f
    with pytest.raises(SystemExit, match="--shard-index must be in"):
        run("sharded", "--num-shards", "2", "--shard-index", "2")


def test_a_missing_image_is_skipped_and_reported(tmp_path):
    json_file, images = disc_set(tmp_path, missing_image=True)
    out = str(tmp_path / "out")
    metrics = load_tool("make_panoptic_labels").main(["--json", json_file, "--images", images, "--out", out,
                                                      "--no-progress", "--no-cues", "--workers", "1"])
    assert metrics["num_skipped"] == 1 and metrics["num_images"] == 1
    report = json.load(open(os.path.join(out, "skipped.json")))
    assert report[0]["image_id"] == 2 and "2.jpg" in report[0]["reason"]
    assert [a["image_id"] for a in json.load(open(os.path.join(out, "panoptic.json")))["annotations"]] == [1]


def test_cues_or_no_cues_must_be_said(tmp_path, capsys):
    with pytest.raises(SystemExit):
        load_tool("make_panoptic_labels").parse_args(["--json", "a", "--images", "b", "--out", "c"])
    assert "--no-cues" in capsys.readouterr().err


def test_stuff_label_map_keeps_stuff_cues_only():
    cams = np.zeros((2, 4, 5), np.float32)
    cams[0, :2] = 1.0  # a thing's cue: not used
    cams[1, 2:] = 0.8
    cams[1, 3, 4] = 0.2  # below 50 % of its max: uncovered
    labels = stuff_label_map([0, 1], cams, {0: True, 1: False}, (8, 10))
    assert labels.shape == (8, 10)
    assert (labels[:3] == 255).all() and (labels[5:7, :6] == 2).all() and labels[7, 9] == 255


def test_semi_supervised_images_keep_their_true_labels(tmp_path):
    from wsis.data.coco_weak import load_coco_instances
    from wsis.data.weak import keep_masks_on_fraction, seeded_image_ids

    json_file, images = disc_set(tmp_path)
    out = str(tmp_path / "out")
    common = ["--json", json_file, "--images", images, "--out", out, "--no-progress", "--no-cues", "--workers", "1"]
    metrics = load_tool("make_panoptic_labels").main(common + ["--full-fraction", "0.5", "--seed", "3"])
    dicts, _ = load_coco_instances(json_file, images)
    full = seeded_image_ids(dicts, 0.5, 3)
    assert len(full) == 1 and metrics["num_full"] == 1
    assert full == {d["image_id"] for d in keep_masks_on_fraction(dicts, 0.5, 3) if d["supervision"] == "mask"}
    (k,) = full
    pan = {a["image_id"]: a for a in json.load(open(os.path.join(out, "panoptic.json")))["annotations"]}
    assert sorted(s["category_id"] for s in pan[k]["segments_info"]) == [1, 90]  # the true ball and grass
    ids = panoptic_rgb_to_id(cv2.imread(os.path.join(out, f"{k}.png"))[:, :, ::-1])
    assert (ids > 0).all()  # the true labels cover every pixel
    assert [s["category_id"] for s in pan[3 - k]["segments_info"]] == [1]  # the other image: pseudo, things only
    # grass: exact in the full image (TP, IoU 1), missing in the weak one (FN): PQ = SQ · RQ = 1 · 2 / (2 + 1)
    assert metrics["PQ_st"] == pytest.approx(100 * 2 / 3)
    with pytest.raises(SystemExit, match="other settings"):
        load_tool("make_panoptic_labels").main(common + ["--full-fraction", "1.0"])
