"""The command-line tools, run in-process on real and synthetic data."""
import json
import os

import pytest


from conftest import load_tool




def test_quickstart_job_on_real_data(coco_tiny, tmp_path):
    out = tmp_path / "q"
    metrics = load_tool("make_pseudo_masks").main(
        ["--json", coco_tiny[0], "--images", coco_tiny[1], "--out", str(out), "--num-vis", "2", "--no-progress",
         "--workers", "2", "--method", "boxfill"])
    assert sorted(os.listdir(out)) == ["metrics.json", "pseudo_masks.json", "vis"]
    assert len(os.listdir(out / "vis")) == 2
    saved = json.load(open(out / "metrics.json"))
    assert saved["num_images"] == 80 and saved["num_instances"] == 804  # 815 annotations, 11 crowds
    # box-fill covers every GT pixel of its box: recall is high, IoU is what boxes give (~0.59 on coco_tiny val)
    assert 0.5 < saved["kept/mean_iou"] < 0.7 and saved["pixel_recall"] > 0.85
    assert metrics["kept/mean_iou"] == saved["kept/mean_iou"]
    # a second run with the same settings keeps the file; other settings are refused unless --overwrite;
    # --overwrite regenerates identical bytes
    before = (out / "pseudo_masks.json").read_bytes()
    again = load_tool("make_pseudo_masks").main(["--json", coco_tiny[0], "--images", coco_tiny[1], "--out", str(out),
                                                 "--no-progress", "--num-vis", "0", "--method", "boxfill"])
    assert again["kept/mean_iou"] == saved["kept/mean_iou"]
    with pytest.raises(SystemExit, match="other settings.*overwrite"):
        load_tool("make_pseudo_masks").main(["--json", coco_tiny[0], "--images", coco_tiny[1], "--out", str(out),
                                         "--no-progress", "--method", "boxfill", "WSIS.PSEUDO.BOXFILL.OVERLAP",
                                         "smallest"])
    load_tool("make_pseudo_masks").main(["--json", coco_tiny[0], "--images", coco_tiny[1], "--out", str(out),
                                     "--no-progress", "--overwrite", "--num-vis", "0", "--method", "boxfill"])
    assert (out / "pseudo_masks.json").read_bytes() == before


def test_quickstart_reports_unreadable_overlay_image(tiny_coco, tmp_path, caplog):
    (tmp_path / "images" / "a.jpg").write_bytes(b"broken")
    load_tool("make_pseudo_masks").main(["--json", tiny_coco[0], "--images", tiny_coco[1], "--out",
                                     str(tmp_path / "o"), "--no-progress", "--method", "boxfill"])
    assert "image id 7: cannot read" in caplog.text


def test_derive_weak_dataset(tiny_coco, tmp_path):
    out = tmp_path / "box.json"
    load_tool("derive_weak_dataset").main(["--json", tiny_coco[0], "--mode", "box", "--out", str(out)])
    data = json.load(open(out))
    assert len(data["annotations"]) == 4 and not any("segmentation" in a for a in data["annotations"])
