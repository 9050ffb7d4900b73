"""CCGR's iteration pieces (pure): the peak stop of the refinement, bags from boxes, the pseudo instance labels of
refined boxes, the segmentation labels from instance masks, the predictions and proposal files, the bag job's box
mode."""
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wsis.core.masks import encode_mask
from wsis.data.predictions import read_predictions
from wsis.methods.ccgr.bag_file import read_bag_file, read_proposal_file, write_bag_file, write_proposal_file
from wsis.methods.ccgr.bag_job import make_bags
from wsis.methods.ccgr.box_bags import box_bags
from wsis.methods.ccgr.label_job import write_instance_semantic_labels
from wsis.methods.ccgr.labels import ccgr_instances, instance_semantic_map
from wsis.methods.ccgr.refine import CCGRParams, refine_boxes


def _smooth(s):
    """Gaussian smoothing (σ 2), like a network's scores."""
    k = torch.exp(-torch.arange(-6, 7.0) ** 2 / 8.0)
    k = (k / k.sum()).to(s.dtype)
    s = s[None, None]
    s = F.conv2d(F.conv2d(s, k.view(1, 1, 1, -1), padding=(0, 6)), k.view(1, 1, -1, 1), padding=(6, 0))
    return s[0, 0]


def _two_objects():
    """Two touching objects of one class, [16, 28) and [28, 40) × [20, 40), as one smoothed region of 64 × 64."""
    s = torch.zeros(64, 64)
    s[20:40, 16:40] = 1.0
    return _smooth(s)


LONG = CCGRParams(steps=400)


def test_refinement_stops_before_a_second_peak():
    start = torch.tensor([[16.0, 20.0, 26.0, 40.0]])
    free = refine_boxes(_two_objects(), start, LONG)
    assert free[0, 2] > 39  # without the stop the box covers both objects
    peaks = torch.tensor([[[21.0, 30.0], [35.0, 30.0]]])
    held = refine_boxes(_two_objects(), start, LONG, stop_points=peaks)
    assert 30 < held[0, 2] <= 35  # it grew, then stopped before holding the second peak
    assert (held[0, [1, 3]] - torch.tensor([20.0, 40.0])).abs().max() < 1.5  # and its other sides still settled
    assert torch.equal(refine_boxes(_two_objects(), start, LONG, stop_points=torch.full((1, 2, 2), float("nan"))),
                       free)
    # a box that starts with two peaks may keep them, but takes no third
    three = torch.tensor([[[18.0, 30.0], [21.0, 30.0], [35.0, 30.0]]])
    assert refine_boxes(_two_objects(), start, LONG, stop_points=three)[0, 2] <= 35


def test_bag_file_keeps_the_peaks_and_reads_files_without_them(tmp_path):
    bags = {"boxes": np.array([[0, 0, 4, 4], [1, 1, 5, 5]], np.float32), "objectness": np.zeros(2, np.float32),
            "bag_index": np.array([0, 1]), "bag_labels": np.array([3, 1]), "peaks": np.array([[2, 2], [3, 3.5]])}
    write_bag_file(str(tmp_path / "a.pkl"), {5: bags, 6: dict(bags, peaks=None)})
    back = read_bag_file(str(tmp_path / "a.pkl"))
    assert back[5]["peaks"].tolist() == [[2, 2], [3, 3.5]] and np.isnan(back[6]["peaks"]).all()
    import pickle

    data = pickle.load(open(tmp_path / "a.pkl", "rb"))
    del data["bag_peaks"]  # a bag file of an earlier wsis
    pickle.dump(data, open(tmp_path / "old.pkl", "wb"))
    assert np.isnan(read_bag_file(str(tmp_path / "old.pkl"))[5]["peaks"]).all()
    data["bag_peaks"] = [np.zeros((1, 2))] * 2
    pickle.dump(data, open(tmp_path / "bad.pkl", "wb"))
    with pytest.raises(ValueError, match="image id 5 has 1 peaks for 2 bags"):
        read_bag_file(str(tmp_path / "bad.pkl"))


def test_box_bags_take_the_top_k_proposals_by_iou():
    proposals = np.array([[0, 0, 20, 20], [1, 1, 10, 10], [50, 50, 60, 60], [0, 0, 10, 10], [0, 0, 9, 10],
                          [0, 0, 10, 10]], np.float32)
    scores = np.arange(6, dtype=np.float32)
    b = box_bags([[0, 0, 10, 10], [30, 30, 40, 40], [48, 48, 60, 60]], [2, 0, 4], proposals, scores, top_k=3)
    # box 0: IoU 1 (#3, #5: a tie, the earlier first), 0.9 (#4), 0.81 (#1), 0.25 (#0) → #3, #5, #4;
    # box 1 overlaps nothing: no bag; box 2: only #2 overlaps it
    assert b["bag_labels"].tolist() == [2, 4] and b["bag_index"].tolist() == [0, 0, 0, 1]
    assert b["boxes"].tolist() == proposals[[3, 5, 4, 2]].tolist() and b["objectness"].tolist() == [3, 5, 4, 2]
    assert np.isnan(b["peaks"]).all() and b["peaks"].shape == (2, 2)
    empty = box_bags(np.zeros((0, 4)), [], proposals, scores)
    assert empty["boxes"].shape == (0, 4) and len(empty["bag_labels"]) == 0
    with pytest.raises(ValueError, match="1 boxes for 2 classes"):
        box_bags([[0, 0, 1, 1]], [0, 1], proposals, scores)


def _probs():
    """Background, class 0 on [20, 40)², class 1 on [44, 60) × [4, 20), smoothed, on 64 × 64."""
    a, b = torch.zeros(64, 64), torch.zeros(64, 64)
    a[20:40, 20:40], b[4:20, 44:60] = 1.0, 1.0
    a, b = _smooth(a), _smooth(b)
    return torch.stack([1 - a - b, a, b]).numpy()


def test_ccgr_instances_refine_then_crop_the_class():
    out = ccgr_instances(_probs(), [[22, 18, 34, 44], [40, 0, 64, 26]], [0, 1], [0.7, 0.3])
    assert [o["category_id"] for o in out] == [0, 1] and [o["score"] for o in out] == [0.7, 0.3]
    label = _probs().argmax(0)  # each class's region: its square less the smoothed corners
    assert (out[0]["mask"] == (label == 1)).all()  # the box grew from 12 to the blob's 20 px, then cropped it
    assert (out[1]["mask"] == (label == 2)).all()
    assert np.abs(out[0]["box"] - [20, 20, 40, 40]).max() < 0.5
    raw = ccgr_instances(_probs(), [[22, 18, 34, 44]], [0], [0.7], CCGRParams(steps=0))
    assert raw[0]["mask"].sum() == 12 * 20  # no refinement: the box's own crop
    with pytest.raises(ValueError, match="outside the map's 2 classes"):
        ccgr_instances(_probs(), [[0, 0, 5, 5]], [2], [1.0])
    assert ccgr_instances(_probs(), np.zeros((0, 4)), [], []) == []


def test_ccgr_instances_stop_at_the_class_peaks():
    fg = _two_objects().numpy()
    p = np.stack([1.0 - fg, fg])
    free = ccgr_instances(p, [[16, 20, 26, 40]], [0], [1.0], LONG)
    held = ccgr_instances(p, [[16, 20, 26, 40]], [0], [1.0], LONG, peaks=[[21, 30], [35, 30], [5, 5]],
                          peak_classes=[0, 0, 3])
    assert free[0]["mask"][:, 36:40].all(1)[22:38].all() and not held[0]["mask"][:, 36:].any()
    assert held[0]["mask"][22:38, 18:30].all()  # the first object, [16, 28), within 2 px


def test_instance_semantic_map_is_the_union_per_class():
    a, b, c = (np.zeros((8, 8), bool) for _ in range(3))
    a[0:4, 0:4], b[2:6, 2:6], c[6:8, 6:8] = True, True, True
    preds = [{"category_id": 0, "score": 0.9, "segmentation": encode_mask(a)},
             {"category_id": 2, "score": 0.8, "segmentation": encode_mask(b)},
             {"category_id": 1, "score": 0.2, "segmentation": encode_mask(c)},  # below the threshold
             {"category_id": 1, "score": 0.9, "segmentation": None}]
    label = instance_semantic_map(preds, 8, 8, score_thresh=0.5)
    want = np.zeros((8, 8), np.uint8)
    want[0:4, 0:4] = 1
    want[2:6, 2:6] = 3  # a tie in size: the later mask takes the overlap (wsis.core.semantic's rule)
    assert label.dtype == np.uint8 and (label == want).all()
    with pytest.raises(ValueError, match="for a 9x8 image"):
        instance_semantic_map(preds, 8, 9)


def _predictions_files(tmp_path):
    m = np.zeros((8, 8), bool)
    m[1:3, 2:6] = True
    per_image = [{"image_id": 4, "instances": [
        {"image_id": 4, "category_id": 7, "bbox": [2, 1, 4, 2], "score": 0.9, "segmentation": encode_mask(m)},
        {"image_id": 4, "category_id": 3, "bbox": [0, 0, 1, 1], "score": 0.4}]}]
    torch.save(per_image, tmp_path / "p.pth")
    (tmp_path / "p.json").write_text(json.dumps([r for p in per_image for r in p["instances"]]))
    return str(tmp_path / "p.pth"), str(tmp_path / "p.json"), m


def test_read_predictions_gives_boxes_and_masks(tmp_path):
    pth, js, m = _predictions_files(tmp_path)
    a, b = read_predictions(pth, {3: 0, 7: 1}), read_predictions(js, {3: 0, 7: 1})
    assert a == b and [r["category_id"] for r in a[4]] == [1, 0]
    assert a[4][0]["box"] == [2, 1, 6, 3] and a[4][1]["segmentation"] is None and a[4][1]["score"] == 0.4
    from wsis.methods.wsps.refine_round import load_predictions

    assert [(c, s) for c, s, _ in load_predictions(pth, {3: 0, 7: 1})[4]] == [(1, 0.9)]  # masks only
    with pytest.raises(ValueError, match="image id 4: unknown category id 7"):
        read_predictions(js, {3: 0})
    (tmp_path / "bad.json").write_text(json.dumps([{"image_id": 9, "category_id": 3, "score": 1}]))
    with pytest.raises(ValueError, match="bad.json: image id 9: a result without"):
        read_predictions(str(tmp_path / "bad.json"))
    (tmp_path / "neg.json").write_text(json.dumps([{"image_id": 9, "category_id": 3, "score": 1,
                                                    "bbox": [0, 0, -2, 1]}]))
    with pytest.raises(ValueError, match="image id 9: bad bbox"):
        read_predictions(str(tmp_path / "neg.json"))


def test_semantic_label_job_keeps_tagged_classes_and_resumes(tmp_path):
    from wsis.core.semantic import IGNORE_LABEL
    import cv2

    pth, _, m = _predictions_files(tmp_path)
    preds = read_predictions(pth, {3: 0, 7: 1})
    dicts = [{"image_id": 4, "height": 8, "width": 8, "image_labels": [1]},
             {"image_id": 5, "height": 8, "width": 8, "image_labels": [0]}]
    out = str(tmp_path / "labels")
    assert write_instance_semantic_labels(dicts, preds, pth, out, progress=False) == {"maps": 2, "empty": 1}
    four = cv2.imread(f"{out}/4.png", cv2.IMREAD_UNCHANGED)
    assert (four == np.where(m, 2, 0)).all()
    assert (cv2.imread(f"{out}/5.png", cv2.IMREAD_UNCHANGED) == IGNORE_LABEL).all()  # no mask: no loss
    only_other = [dict(dicts[0], image_labels=[0]), dicts[1]]  # class 1 untagged: its mask is dropped
    assert write_instance_semantic_labels(only_other, preds, pth, str(tmp_path / "o"), progress=False)["empty"] == 2
    assert write_instance_semantic_labels(dicts, preds, pth, out, progress=False)["maps"] == 0  # resumed
    with pytest.raises(ValueError, match="another iteration's labels"):
        write_instance_semantic_labels(dicts, preds, pth, out, score_thresh=0.1, progress=False)


def test_proposal_file_round_trip_and_errors(tmp_path):
    props = {3: (np.array([[0, 0, 4, 4]], np.float32), np.array([0.5], np.float32)),
             1: (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))}
    write_proposal_file(str(tmp_path / "p.pkl"), props)
    back = read_proposal_file(str(tmp_path / "p.pkl"))
    assert sorted(back) == [1, 3] and back[3][0].tolist() == [[0, 0, 4, 4]] and back[1][0].shape == (0, 4)
    import pickle

    pickle.dump({"ids": [1], "boxes": [np.zeros((2, 4))], "objectness_logits": [np.zeros(1)]},
                open(tmp_path / "bad.pkl", "wb"))
    with pytest.raises(ValueError, match="image id 1 has 2 boxes for 1 scores"):
        read_proposal_file(str(tmp_path / "bad.pkl"))
    pickle.dump({"boxes": []}, open(tmp_path / "none.pkl", "wb"))
    with pytest.raises(ValueError, match="not a detectron2 proposal file"):
        read_proposal_file(str(tmp_path / "none.pkl"))


def test_make_bags_from_predictions_and_saved_proposals(tmp_path):
    import cv2

    img = np.full((64, 64, 3), (40, 160, 40), np.uint8)
    img[8:28, 10:30] = (30, 30, 220)
    cv2.imwrite(str(tmp_path / "1.png"), img)
    dicts = [{"image_id": 1, "file_name": str(tmp_path / "1.png"), "height": 64, "width": 64, "image_labels": [2]}]
    preds = {1: [{"category_id": 2, "score": 0.9, "box": [10, 8, 30, 28], "segmentation": None},
                 {"category_id": 0, "score": 0.1, "box": [0, 0, 5, 5], "segmentation": None}]}
    saved = str(tmp_path / "props.pkl")
    done, skipped = make_bags(dicts, None, str(tmp_path / "b.pkl"), predictions=preds, save_proposals=saved,
                              progress=False)
    bags = read_bag_file(str(tmp_path / "b.pkl"))[1]
    assert bags["bag_labels"].tolist() == [2] and not skipped  # the 0.1 box is below the 0.5 threshold
    assert bags["boxes"][0].tolist() == [10, 8, 30, 28] and len(bags["boxes"]) == 5  # every overlapping proposal
    again, _ = make_bags(dicts, None, str(tmp_path / "c.pkl"), proposals=read_proposal_file(saved),
                         predictions=preds, progress=False)
    assert np.array_equal(again[1]["boxes"], bags["boxes"])
    with pytest.raises(ValueError, match="exactly one"):
        make_bags(dicts, None, str(tmp_path / "d.pkl"), progress=False)


def test_iteration_one_bags_use_the_first_segmentation_labels_as_eq4_foreground(tmp_path):
    """The paper's O of Eq. 4 is the first segmentation labels' map (AffinityNet's): iteration 1's bag command
    passes --semantic-labels as --foreground-labels, and --objectness (default contrast); later iterations' box
    bags have no O."""
    from wsis.cli.ccgr_iteration import Iteration, parse_args

    one = parse_args(["--work", str(tmp_path), "--iteration", "1", "--dataset", "d", "--cues", "c",
                      "--semantic-labels", "labels"])
    name, cmd, _ = Iteration(one, "j.json", "img").stages()[0]
    assert name == "bags" and cmd[0] == "make_ccgr_bags"
    assert cmd[cmd.index("--foreground-labels") + 1] == os.path.abspath("labels")
    assert cmd[cmd.index("--objectness") + 1] == "contrast"
    mcg = parse_args(["--work", str(tmp_path), "--iteration", "1", "--dataset", "d", "--cues", "c",
                      "--semantic-labels", "labels", "--objectness", "proposals"])
    cmd = Iteration(mcg, "j.json", "img").stages()[0][1]
    assert cmd[cmd.index("--objectness") + 1] == "proposals"
    two = parse_args(["--work", str(tmp_path), "--iteration", "2", "--dataset", "d"])
    assert "--foreground-labels" not in Iteration(two, "j.json", "img").stages()[0][1]


def test_initial_weights_in_the_opts_serve_iteration_one_only(tmp_path):
    """A MODEL.WEIGHTS in --ss-opts (e.g. the CAM classifier's exported backbone) initialises iteration 1's branch;
    iteration 2 repeats the same options and still starts from iteration 1's checkpoint, unless --from-scratch."""
    from wsis.cli.ccgr_iteration import Iteration, parse_args

    def weights(argv):
        stages = {name: cmd for name, cmd, _ in Iteration(parse_args(argv), "j.json", "img").stages()}
        cmd = stages["ss branch"]
        return [cmd[i + 1] for i, v in enumerate(cmd) if v == "MODEL.WEIGHTS"][-1]  # the last one wins

    common = ["--work", str(tmp_path), "--dataset", "d", "--ss-opts", "MODEL.WEIGHTS /w/backbone.pkl"]
    assert weights(["--iteration", "1", "--cues", "c", "--semantic-labels", "l", *common]) == "/w/backbone.pkl"
    assert weights(["--iteration", "2", *common]) == os.path.join(str(tmp_path), "iteration_1", "ss",
                                                                  "model_final.pth")
    assert weights(["--iteration", "2", "--from-scratch", *common]) == "/w/backbone.pkl"
