"""The quickstart main job with the "wsps" generator: defaults, kill and resume, bad inputs, semantic maps."""
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from wsis.data.pseudo_store import JOURNAL_SUFFIX, load_pseudo_masks

from conftest import REPO, load_tool, write_coco

# config overrides (KEY VALUE, last on the command line, as in train_net.py)
FAST = ["WSIS.PSEUDO.WSPS.GRABCUT.BOX_SIZE", "64", "WSIS.PSEUDO.WSPS.CRF.ITERATIONS", "3",
        "WSIS.PSEUDO.WSPS.CRF.BOX_SIZE", "64"]




def circle_polygon(cx, cy, r, points=24):
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1).ravel().round(1).tolist()


def discs_dataset(tmp_path, n):
    """n synthetic 96x128 images, each with two discs of two classes on a noisy background, and their COCO json."""
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    rng = np.random.RandomState(0)
    images, anns = [], []
    for i in range(n):
        img = np.clip(np.array([60, 140, 60]) + rng.randint(-30, 30, (96, 128, 3)), 0, 255).astype(np.uint8)
        for k, (cx, cy, r, colour) in enumerate([(35, 40, 20, (40, 40, 200)), (95, 60, 16 + i % 5, (200, 60, 40))]):
            mask = np.zeros((96, 128), np.uint8)
            cv2.circle(mask, (cx, cy), r, 1, -1)
            img[mask > 0] = colour
            anns.append({"id": 100 * i + k + 1, "image_id": i + 1, "category_id": 1 + 2 * k, "iscrowd": 0,
                         "bbox": [cx - r, cy - r, 2 * r + 1, 2 * r + 1],
                         "segmentation": [circle_polygon(cx, cy, r)]})
        cv2.imwrite(str(img_dir / f"{i + 1}.png"), img)
        images.append({"id": i + 1, "file_name": f"{i + 1}.png", "height": 96, "width": 128})
    return write_coco(tmp_path / "ann.json", images, anns), str(img_dir)


def test_default_method_is_wsps():
    args = load_tool("make_pseudo_masks").parse_args([])
    assert args.method == "wsps" and args.workers >= 1


def test_wsps_job_outputs_and_quality(tmp_path):
    json_file, images = discs_dataset(tmp_path, 3)
    out = tmp_path / "out"
    metrics = load_tool("make_pseudo_masks").main(["--json", json_file, "--images", images, "--out", str(out),
                                               "--workers", "1", "--no-progress", "--num-vis", "2",
                                               "--save-semantic", "WSIS.PSEUDO.WSPS.SEED", "3"])
    assert sorted(os.listdir(out)) == ["metrics.json", "pseudo_masks.json", "semantic", "vis"]
    assert len(os.listdir(out / "vis")) == 2 and len(os.listdir(out / "semantic")) == 3
    sem = cv2.imread(str(out / "semantic" / "1.png"), cv2.IMREAD_UNCHANGED)
    assert sem[40, 35] == 1 and sem[60, 95] == 2 and sem[0, 0] == 0  # contiguous class + 1
    assert metrics["method"] == "wsps" and metrics["params"]["seed"] == 3
    assert metrics["kept/mean_iou"] > 0.85 and metrics["pixel_precision"] > 0.95


def test_killed_run_resumes_to_identical_bytes(tmp_path):
    json_file, images = discs_dataset(tmp_path, 16)
    ref, out = tmp_path / "ref", tmp_path / "out"
    common = ["--json", json_file, "--images", images, "--no-progress", "--num-vis", "0"]
    load_tool("make_pseudo_masks").main([*common, "--out", str(ref), "--workers", "1", *FAST])
    cmd = [sys.executable, os.path.join(REPO, "tools", "make_pseudo_masks.py"), *common, "--out", str(out),
           "--workers", "2", *FAST]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = out / ("pseudo_masks.json" + JOURNAL_SUFFIX)
    deadline = time.time() + 120
    while time.time() < deadline and not (journal.exists() and journal.read_text().count("\n") >= 2):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "pseudo_masks.json").exists(), "killed before it finished"
    done = journal.read_text().count("\n") - 1
    assert 1 <= done < 16
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert (out / "pseudo_masks.json").read_bytes() == (ref / "pseudo_masks.json").read_bytes()
    assert not journal.exists()


def test_bad_inputs_are_reported_and_counted(tmp_path, caplog):
    json_file, images = discs_dataset(tmp_path, 5)
    (tmp_path / "images" / "2.png").write_bytes(b"not an image")
    os.remove(tmp_path / "images" / "3.png")
    cv2.imwrite(str(tmp_path / "images" / "4.png"), np.zeros((50, 50, 3), np.uint8))  # size differs from the json
    out = tmp_path / "out"
    metrics = load_tool("make_pseudo_masks").main(["--json", json_file, "--images", images, "--out", str(out),
                                               "--workers", "2", "--no-progress", "--num-vis", "0", *FAST])
    skipped = json.loads((out / "skipped.json").read_text())
    assert sorted(s["image_id"] for s in skipped) == [2, 3, 4]
    reasons = {s["image_id"]: s["reason"] for s in skipped}
    assert "cannot read" in reasons[2] and "cannot read" in reasons[3] and "annotations say 128x96" in reasons[4]
    assert metrics["num_skipped"] == 3 and metrics["num_images"] == 2
    assert "3 of 5 images skipped" in caplog.text
    _, records = load_pseudo_masks(str(out / "pseudo_masks.json"))
    assert sorted(records) == [1, 5]


def test_wsps_job_on_real_coco_images(coco_tiny, tmp_path):
    """The main job's default generator on the first 6 coco_tiny val images: precise labels, better than box-fill."""
    with open(coco_tiny[0]) as f:
        data = json.load(f)
    images = sorted(data["images"], key=lambda i: i["id"])[:6]
    ids = {i["id"] for i in images}
    subset = write_coco(tmp_path / "subset.json", images, [a for a in data["annotations"] if a["image_id"] in ids],
                        data["categories"])
    common = ["--json", subset, "--images", coco_tiny[1], "--no-progress", "--num-vis", "1", "--workers", "2"]
    wsps = load_tool("make_pseudo_masks").main([*common, "--out", str(tmp_path / "wsps")])
    fill = load_tool("make_pseudo_masks").main([*common, "--out", str(tmp_path / "fill"), "--method", "boxfill"])
    assert wsps["num_images"] == 6 and wsps["num_instances"] == fill["num_instances"] > 10
    assert wsps["pixel_precision"] > fill["pixel_precision"] and wsps["kept/mean_iou"] > fill["kept/mean_iou"]


def test_malformed_parameters_are_refused_with_the_option_named(tmp_path, capsys):
    json_file, images = discs_dataset(tmp_path, 1)
    common = ["--json", json_file, "--images", images, "--out", str(tmp_path / "o"), "--no-progress"]
    with pytest.raises(SystemExit):  # argparse: usage + message, exit 2
        load_tool("make_pseudo_masks").main([*common, "WSIS.PSEUDO.WSPS.SEED"])
    assert "KEY VALUE pairs" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="WSIS.PSEUDO.WSPS.SEEDS"):  # a key that does not exist, named
        load_tool("make_pseudo_masks").main([*common, "WSIS.PSEUDO.WSPS.SEEDS", "1"])
    with pytest.raises(SystemExit, match="refine must be 'vote', 'none' or 'crf'"):  # a value the generator refuses
        load_tool("make_pseudo_masks").main([*common, "WSIS.PSEUDO.WSPS.REFINE", "maybe"])
    (tmp_path / "bad.yaml").write_text("WSIS:\n  PSEUDO:\n    WSPS:\n      GRABCUT:\n        ITERS: 3\n")
    with pytest.raises(SystemExit, match="WSIS.PSEUDO.WSPS.GRABCUT.ITERS"):  # from a yaml too
        load_tool("make_pseudo_masks").main([*common, "--config-file", str(tmp_path / "bad.yaml")])
