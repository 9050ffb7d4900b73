"""CCGR's iteration with a real detectron2, on the tiny tag set: tools/ccgr_iteration.py runs iteration 1 (peak bags,
MIL branch, its boxes, the segmentation branch, CCGR pseudo masks, Proxy Mask R-CNN, its predictions) and
iteration 2 (bags from those boxes, labels from those masks) on tiny schedules; a second call resumes (every stage
done is skipped); the pseudo masks reach the instance branch as its annotations."""
import json
import os

import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")

from tag_helpers import _tag_data, _trained_classifier  # noqa: E402

TINY = "SOLVER.MAX_ITER 2 SOLVER.WARMUP_ITERS 0 SOLVER.STEPS () SOLVER.IMS_PER_BATCH 2 DATALOADER.NUM_WORKERS 0 " \
       "INPUT.MIN_SIZE_TRAIN (64,) INPUT.MAX_SIZE_TRAIN 64 INPUT.MIN_SIZE_TEST 64 INPUT.MAX_SIZE_TEST 64 " \
       "DATASETS.TEST () SEED 0"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Cues and semantic labels of the tag set, then iterations 1 and 2 of CCGR."""
    from wsis.cli import ccgr_iteration, make_cues, make_semantic_labels

    tmp = tmp_path_factory.mktemp("ccgr_iteration")
    json_file, images = _tag_data(tmp)
    config, weights = _trained_classifier(tmp)
    cues, labels, work = str(tmp / "cues"), str(tmp / "labels"), str(tmp / "work")
    make_cues.main(["--json", json_file, "--images", images, "--config-file", config, "--no-progress", "--out", cues,
                    "--workers", "1", "MODEL.WEIGHTS", weights, "MODEL.CAM.SCALES", "(1.0,)"])
    make_semantic_labels.main(["--cues", cues, "--json", json_file, "--images", images, "--out", labels,
                               "--workers", "1", "--no-progress"])
    common = ["--work", work, "--dataset", "cam_test_tag", "--workers", "1",
              "--mil-opts", TINY + " MODEL.ROI_HEADS.NUM_CLASSES 2",
              "--ss-opts", TINY.replace("MAX_ITER 2", "MAX_ITER 40").replace("IMS_PER_BATCH 2", "IMS_PER_BATCH 4")
              + " SOLVER.BASE_LR 0.05 MODEL.SEM_SEG_HEAD.NUM_CLASSES 3 MODEL.CCGR.REFINE.STEPS 20",
              "--is-opts", TINY + " MODEL.ROI_HEADS.NUM_CLASSES 2 MODEL.ROI_HEADS.SCORE_THRESH_TEST 0.0",
              "--bag-score-thresh", "0.0", "--label-score-thresh", "0.0"]
    first = ["--iteration", "1", "--cues", cues, "--semantic-labels", labels, *common]
    torch.manual_seed(0)
    ccgr_iteration.main(first)
    ccgr_iteration.main(["--iteration", "2", *common])
    return {"work": work, "first": first, "common": common, "json": json_file}


def test_iteration_one_makes_every_stage(run):
    from wsis.data.predictions import read_predictions
    from wsis.methods.ccgr.bag_file import read_bag_file, read_proposal_file

    it = os.path.join(run["work"], "iteration_1")
    for f in ("bags.pkl", "mil/model_final.pth", "mil_boxes.pth", "ss/model_final.pth", "pseudo/pseudo_masks.json",
              "is/model_final.pth", "is_predictions.pth"):
        assert os.path.isfile(os.path.join(it, f)), f
    bags = read_bag_file(os.path.join(it, "bags.pkl"))
    images = {i["id"]: i for i in json.load(open(run["json"]))["images"]}
    for image_id, b in bags.items():  # peak bags: classes among the image's tags, each bag with its peak
        assert set(b["bag_labels"].tolist()) <= {c - 1 for c in images[image_id]["image_labels"]}
        assert np.isfinite(b["peaks"]).all()
    tagged = {i for i, im in images.items() if im["image_labels"]}
    assert set(read_proposal_file(os.path.join(run["work"], "proposals.pkl"))) == tagged == {1, 2, 3, 5, 6}
    mil = read_predictions(os.path.join(it, "mil_boxes.pth"), {1: 0, 2: 1})
    assert sum(len(v) for v in mil.values()) == sum(len(b["bag_labels"]) for b in bags.values())  # one box a bag
    store = json.load(open(os.path.join(it, "pseudo", "pseudo_masks.json")))
    assert store["provenance"]["method"] == "ccgr"
    instances = [(r["image_id"], i) for r in store["images"] for i in r["instances"]]
    assert instances and len(instances) <= sum(len(v) for v in mil.values())
    for image_id, inst in instances:  # pseudo masks only of the MIL boxes' classes, without a source annotation
        assert inst["annotation_id"] is None
        assert inst["category_id"] in {r["category_id"] for r in mil[image_id]}


def test_iteration_two_builds_on_the_instance_branch(run):
    import cv2

    from wsis.data.predictions import read_predictions
    from wsis.methods.ccgr.bag_file import read_bag_file

    one, two = (os.path.join(run["work"], f"iteration_{k}") for k in (1, 2))
    preds = read_predictions(os.path.join(one, "is_predictions.pth"), {1: 0, 2: 1})
    bags = read_bag_file(os.path.join(two, "bags.pkl"))
    assert bags and all(np.isnan(b["peaks"]).all() for b in bags.values())  # box bags have no peaks
    tags = {im["id"]: {c - 1 for c in im["image_labels"]} for im in json.load(open(run["json"]))["images"]}
    for image_id, b in bags.items():  # one bag per box of a tagged class (score ≥ 0, every box overlaps some)
        assert b["bag_labels"].tolist() == [r["category_id"] for r in preds[image_id]
                                            if r["category_id"] in tags[image_id]]
    assert sum(len(b["bag_labels"]) for b in bags.values()) > 0
    params = json.load(open(os.path.join(two, "semantic", "params.json")))
    assert params["predictions"] == os.path.join(one, "is_predictions.pth")
    images = json.load(open(run["json"]))["images"]
    for im in images:
        label = cv2.imread(os.path.join(two, "semantic", f"{im['id']}.png"), cv2.IMREAD_UNCHANGED)
        assert label.shape == (64, 64)
        assert set(np.unique(label).tolist()) <= {0, 255} | {c for c in im["image_labels"]}  # tagged classes only
    assert os.path.isfile(os.path.join(two, "is_predictions.pth"))
    # each branch of iteration 2 started from its checkpoint of iteration 1
    for branch in ("mil", "ss", "is"):
        config = open(os.path.join(two, branch, "config.yaml")).read()
        assert os.path.join(one, branch, "model_final.pth") in config


def test_a_second_call_resumes_and_redoes_nothing(run, caplog):
    import logging

    from wsis.cli import ccgr_iteration

    it = os.path.join(run["work"], "iteration_1")
    stamp = {f: os.path.getmtime(os.path.join(it, f)) for f in ("bags.pkl", "mil_boxes.pth", "is_predictions.pth")}
    with caplog.at_level(logging.INFO, logger="wsis.ccgr_iteration"):
        ccgr_iteration.main(run["first"])
    done = [r.getMessage() for r in caplog.records if ": done (" in r.getMessage()]
    assert len(done) == 6  # bags, mil, mil boxes, ss, is, predictions (the store resumes by itself)
    assert stamp == {f: os.path.getmtime(os.path.join(it, f)) for f in stamp}


def test_later_iteration_needs_the_previous_one(run, tmp_path):
    from wsis.cli import ccgr_iteration

    with pytest.raises(SystemExit, match="run iteration 1 first"):
        ccgr_iteration.main(["--iteration", "2", "--work", str(tmp_path), "--dataset", "cam_test_tag"])
    with pytest.raises(SystemExit, match="not a registered COCO-style dataset"):
        ccgr_iteration.main(["--iteration", "1", "--work", str(tmp_path), "--dataset", "no_such_set", "--cues", "c",
                             "--semantic-labels", "l"])


def test_ccgr_generator_names_what_is_missing(run, tmp_path):
    from wsis.cli import make_pseudo_masks

    ss = os.path.join(run["work"], "iteration_1", "ss", "model_final.pth")
    images = os.path.join(os.path.dirname(run["json"]), "images")
    base = ["--method", "ccgr", "--json", run["json"], "--images", images, "--out", str(tmp_path / "p"),
            "--config-file", os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "projects",
                                          "CCGR", "configs", "semantic_psp_R18_scratch_copy_paste.yaml"),
            "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "3"]
    with pytest.raises(SystemExit, match="needs WSIS.CCGR.BOXES"):
        make_pseudo_masks.main(base + ["MODEL.WEIGHTS", ss])
    with pytest.raises(SystemExit, match="needs MODEL.WEIGHTS"):
        make_pseudo_masks.main(base)
    with pytest.raises(SystemExit, match="no_such.pth: cannot read"):
        make_pseudo_masks.main(base + ["MODEL.WEIGHTS", ss, "WSIS.CCGR.BOXES", str(tmp_path / "no_such.pth")])
