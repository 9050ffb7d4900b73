"""BoxCaseg's salient-object maps with a real detectron2 (tools/make_saliency.py): a tiny model's checkpoint, the maps
of real images at their sizes, resume, refusal of other settings, one-line errors, and DSRG's saliency background
seeds (tools/make_semantic_labels.py WSIS.CAM.LABELS dsrg WSIS.DSRG.SEEDS.BACKGROUND saliency) made from them."""
import json
import os
import re

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")

from conftest import COCO_TINY, REPO, load_tool, write_coco  # noqa: E402

BOXCASEG = os.path.join(REPO, "projects", "BoxCaseg", "configs", "boxcaseg_coco_tiny_instant_test.yaml")
PROXY_RCNN = os.path.join(REPO, "projects", "BoxCaseg", "configs", "proxy_mask_rcnn_coco_tiny_instant_test.yaml")
MISSING_ID = 999


@pytest.fixture
def checkpoint(tmp_path):
    """
    The instant-test BoxCaseg model built with seed 0 (untrained: nothing can be downloaded, and the maps' values
    do not matter here), its salient head's logits spread wide and the transferred head's bias very low, so that the
    maps span (0, 1) and DSRG's 0.06 rule falls on both sides; saved by DetectionCheckpointer. Returns its path.
    """
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    import wsis.modeling  # noqa: F401  (registers BoxCaseg)
    from wsis.config import add_wsis_config

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(BOXCASEG)
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():
        model.heads.salient.weight.mul_(60.0)
        model.heads.salient.bias.fill_(-24.0)
        model.heads.transferred_bias.fill_(-20.0)
    DetectionCheckpointer(model, save_dir=str(tmp_path)).save("boxcaseg")
    return str(tmp_path / "boxcaseg.pth")


def _images(tmp_path, n=3):
    """The first n coco_tiny val images with their masks, and an image whose file is missing: (json, folder)."""
    src = os.path.join(COCO_TINY, "annotations", "instances_val2017.json")
    if not os.path.isfile(src):
        pytest.skip(f"shared data not found at {COCO_TINY}")
    data = json.load(open(src))
    images = sorted(data["images"], key=lambda i: i["id"])[:n]
    ids = {i["id"] for i in images}
    images.append({"id": MISSING_ID, "file_name": "missing.jpg", "height": 20, "width": 30})
    anns = [a for a in data["annotations"] if a["image_id"] in ids]
    return (write_coco(tmp_path / "val.json", images, anns, data["categories"]),
            os.path.join(COCO_TINY, "val2017"))


def _expected_map(weights, d):
    """The map computed here without the job: the BGR image resized to SALIENT_RESIZE (144) square, the model's
    fused probability, resized back bilinearly, rounded."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from wsis.config import add_wsis_config

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(BOXCASEG)
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(weights)
    image = cv2.imread(d["file_name"], cv2.IMREAD_COLOR)
    x = cv2.resize(image, (144, 144), interpolation=cv2.INTER_LINEAR)
    prob = model.predict_crops(torch.as_tensor(x.transpose(2, 0, 1).copy())[None])[0].numpy()
    prob = cv2.resize(prob, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.rint(np.clip(prob, 0, 1) * 255).astype(np.uint8)


def _one_line_error(tool, argv, pattern):
    with pytest.raises(SystemExit) as e:
        tool.main(argv)
    message = str(e.value.code)
    assert message.startswith("error: ") and "\n" not in message and re.search(pattern, message), message


def test_saliency_maps_resume_refuse_and_feed_dsrg_seeds(checkpoint, tmp_path):
    from wsis.data.coco_weak import load_coco_instances

    json_file, images = _images(tmp_path)
    dicts, _ = load_coco_instances(json_file, images)
    real = [d for d in dicts if d["image_id"] != MISSING_ID]
    tool = load_tool("make_saliency")
    out = tmp_path / "saliency"
    base = ["--config-file", BOXCASEG, "--json", json_file, "--images", images, "--no-progress"]
    args = base + ["--out", str(out), "MODEL.WEIGHTS", checkpoint]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # the job's count (--threads 1): the expected maps are computed alike
        expected = {d["image_id"]: _expected_map(checkpoint, d) for d in real}
        torch.set_num_threads(2)  # the job runs with its own count and gives the caller's back
        metrics = tool.main(args)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)

    # one PNG per readable image, at the image's size, uint8; the missing image is reported by file and id
    assert metrics["num_images"] == 3 and metrics["num_skipped"] == 1 and metrics["num_missing"] == 1
    assert json.load(open(out / "metrics.json")) == json.loads(json.dumps(metrics))
    skipped = json.load(open(out / "skipped.json"))
    assert [s["image_id"] for s in skipped] == [MISSING_ID]
    assert "missing.jpg" in skipped[0]["reason"] and f"image id {MISSING_ID}" in skipped[0]["reason"]
    for d in real:
        sal = cv2.imread(str(out / f"{d['image_id']}.png"), cv2.IMREAD_UNCHANGED)
        assert sal.dtype == np.uint8 and sal.shape == (d["height"], d["width"])
        assert np.array_equal(sal, expected[d["image_id"]])
    values = np.concatenate([e.ravel() for e in expected.values()])
    assert (values < 0.06 * 255).any() and (values >= 0.06 * 255).any() and values.max() > 128
    for key in ("mae", "f_measure", "mean_iou", "bg_seed_precision", "bg_seed_recall"):
        assert 0 <= metrics[key] <= 1, key
    params = json.load(open(out / "params.json"))
    assert params["weights"] == os.path.abspath(checkpoint) and len(params["weights_sha256"]) == 64
    assert params["salient_resize"] == 144 and params["threads"] == 1

    # a rerun makes only the missing map (the same bytes) and leaves the others untouched
    first = real[0]["image_id"]
    before = {d["image_id"]: os.stat(out / f"{d['image_id']}.png").st_mtime_ns for d in real}
    data = (out / f"{first}.png").read_bytes()
    os.remove(out / f"{first}.png")
    tool.main(args)
    assert (out / f"{first}.png").read_bytes() == data
    assert all(os.stat(out / f"{i}.png").st_mtime_ns == t for i, t in before.items() if i != first)
    # other settings, or another checkpoint, are refused unless --overwrite
    _one_line_error(tool, args + ["WSIS.BOXCASEG.SALIENT_RESIZE", "160"], "another checkpoint or settings.*--overwrite")
    other = tmp_path / "other.pth"
    other.write_bytes(open(checkpoint, "rb").read() + b"x")
    _one_line_error(tool, base + ["--out", str(out), "MODEL.WEIGHTS", str(other)], "another checkpoint or settings")
    # a user's mistakes: one line, no traceback
    _one_line_error(tool, base + ["--out", str(tmp_path / "e1"), "MODEL.WEIGHTS", str(tmp_path / "nope.pth")],
                    "nope.pth.*no such checkpoint")
    _one_line_error(tool, base + ["--out", str(tmp_path / "e2")], "MODEL.WEIGHTS is empty")
    not_a_model = tmp_path / "notes.pth"
    not_a_model.write_text("not a checkpoint")
    _one_line_error(tool, base + ["--out", str(tmp_path / "e3"), "MODEL.WEIGHTS", str(not_a_model)],
                    "notes.pth: cannot load a model from this checkpoint")
    _one_line_error(tool, ["--config-file", PROXY_RCNN] + base[2:] + ["--out", str(tmp_path / "e4"), "MODEL.WEIGHTS",
                                                                     checkpoint], "META_ARCHITECTURE is .*not BoxCaseg")

    # DSRG §3.1 through its command: with no foreground cue anywhere, the seeds are background exactly where the
    # saliency map is below 0.06 (of 255) and unlabelled elsewhere
    from wsis.cli import make_semantic_labels
    from wsis.data.cue_store import CueWriter, cue_map_shape
    from wsis.data.pseudo_store import make_provenance

    cues = tmp_path / "cues"
    with CueWriter(str(cues), make_provenance("test", source=json_file, source_hash="0")) as writer:
        for d in real:
            classes = sorted({a["category_id"] for a in d["annotations"] if not a.get("iscrowd", 0)})
            writer.add({"image_id": d["image_id"], "height": d["height"], "width": d["width"], "stride": 4,
                        "classes": classes, "cams": np.zeros((len(classes), *cue_map_shape(d["height"], d["width"], 4)),
                                                             np.float32)})
    seeds = tmp_path / "seeds"
    make_semantic_labels.main(["--cues", str(cues), "--json", json_file, "--images", images, "--out", str(seeds),
                               "--no-progress", "--workers", "1", "WSIS.CAM.LABELS", "dsrg",
                               "WSIS.DSRG.SEEDS.BACKGROUND", "saliency", "WSIS.DSRG.SEEDS.SALIENCY_DIR", str(out)])
    for d in real:
        seed = cv2.imread(str(seeds / f"{d['image_id']}.png"), cv2.IMREAD_UNCHANGED)
        sal = cv2.imread(str(out / f"{d['image_id']}.png"), cv2.IMREAD_UNCHANGED)
        assert set(np.unique(seed)) <= {0, 255}
        assert np.array_equal(seed == 0, sal < 0.06 * 255)


def test_predict_crops_pads_to_the_backbone_divisibility(checkpoint):
    """FPN needs sides divisible by 32: a 144 px input (SALIENT_RESIZE of the instant test) is zero-padded to 160
    and its maps cropped back; a 128 px one is left as it is."""
    import torch.nn.functional as F
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from wsis.config import add_wsis_config

    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(BOXCASEG)
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(checkpoint)
    crops = torch.randint(0, 256, (2, 3, 144, 144), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    probs = model.predict_crops(crops)
    assert probs.shape == (2, 144, 144)
    padded = F.pad(crops, (0, 16, 0, 16))
    with torch.no_grad():
        direct = model.heads.predict(model.fused_features(padded), output_size=(160, 160))[:, 0]
    assert torch.equal(probs, direct[:, :144, :144])
    assert torch.equal(model.predict_crops(padded), direct)
