import pickle

import numpy as np
import pytest

from wsis.evaluation.localization import (
    CAMThresholdSweep,
    ConfidentAreaAccumulator,
    cam_label_map,
    confident_area_scores,
)
from wsis.evaluation.pseudo_quality import PseudoPixelQualityAccumulator


def test_cam_label_map_by_hand():
    cams = np.array([[[0.9, 0.2, 0.5, 0.3]],   # class 2 → label 3
                     [[0.1, 0.6, 0.5, 0.1]]])  # class 5 → label 6
    # t = 0.3: 0.9 → 3; 0.6 → 6; 0.5 tie between the classes → the first (3); 0.3 = t → background
    assert cam_label_map(cams, [2, 5], 0.3).tolist() == [[3, 6, 3, 0]]
    assert cam_label_map(cams, [2, 5], 0.95).tolist() == [[0, 0, 0, 0]]
    assert cam_label_map(np.zeros((0, 2, 2)), [], 0.1).tolist() == [[0, 0], [0, 0]]


def test_perfect_cam_gives_miou_one():
    gt = np.array([[0, 1, 1, 0], [0, 0, 3, 3]])
    cams = np.stack([(gt == 1), (gt == 3)]).astype(np.float32)  # classes 0 and 2
    sweep = CAMThresholdSweep(4)
    sweep.add(cams, [0, 2], gt)
    res = sweep.summarize()
    assert res["best_miou"] == 1.0 and res["best_threshold"] == 0.05 and res["num_images"] == 1
    assert all(v == 1.0 for v in res["miou_per_threshold"].values())
    assert list(res["miou_per_threshold"])[:3] == [0.05, 0.1, 0.15] and len(res["miou_per_threshold"]) == 19


def test_sweep_finds_the_known_best_threshold():
    # a ramp cue (j + 0.5)/10 over 10 columns; the object is columns 4..9 (cue ≥ 0.45)
    cam = ((np.arange(10) + 0.5) / 10)[None, None].astype(np.float32)
    gt = (np.arange(10) >= 4).astype(np.int64)[None]
    sweep = CAMThresholdSweep(2, thresholds=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    sweep.add(cam, [0], gt)
    res = sweep.summarize()
    assert res["best_threshold"] == 0.4 and res["best_miou"] == 1.0
    # t = 0.3: fg = columns 3..9: bg IoU 3/4, fg IoU 6/7; t = 0.5: fg = 5..9: bg 4/5, fg 5/6
    assert res["miou_per_threshold"][0.3] == pytest.approx((3 / 4 + 6 / 7) / 2)
    assert res["miou_per_threshold"][0.5] == pytest.approx((4 / 5 + 5 / 6) / 2)
    assert sweep.accumulator(0.4).summarize()["iou-1"] == 1.0


def test_sweep_agrees_with_cam_label_map_ignores_void_and_merges():
    rng = np.random.RandomState(0)
    thresholds = (0.2, 0.35, 0.5)
    whole, parts = CAMThresholdSweep(6, thresholds), []
    for _ in range(3):
        gt = rng.randint(0, 6, (7, 9))
        gt[0, :3] = 255
        classes = rng.choice(5, size=2, replace=False)
        cams = rng.rand(2, 7, 9).astype(np.float32)
        cams[0, 1], cams[1, 2] = 0.5, 0.35  # ties with a threshold: background
        whole.add(cams, classes, gt)
        part = CAMThresholdSweep(6, thresholds)
        part.add(cams, classes, gt)
        parts.append(part)
        for t in thresholds:
            ref = PseudoPixelQualityAccumulator(6)
            ref.add(cam_label_map(cams, classes, t), gt)
            assert np.array_equal(part.accumulator(t).confusion, ref.confusion)
    merged = pickle.loads(pickle.dumps(parts[0])).merge(parts[1]).merge(parts[2])
    assert merged.summarize() == whole.summarize()
    assert whole.accumulator(0.2).confusion.sum() == 3 * (63 - 3)  # void pixels never counted
    with pytest.raises(ValueError, match="thresholds"):
        whole.merge(CAMThresholdSweep(6, (0.2,)))


def test_sweep_empty_and_untagged():
    res = CAMThresholdSweep(3).summarize()
    assert res["best_threshold"] == 0.0 and res["best_miou"] == 0.0 and res["num_images"] == 0
    assert all(v == 0.0 for v in res["miou_per_threshold"].values())
    sweep = CAMThresholdSweep(3, thresholds=(0.5,))
    sweep.add(np.zeros((0, 2, 2)), [], np.zeros((2, 2), np.int64))  # no tag: all background, correctly
    assert sweep.summarize()["best_miou"] == 1.0
    with pytest.raises(ValueError, match="GT map"):
        sweep.add(np.zeros((1, 2, 3)), [0], np.zeros((2, 2), np.int64))


GT = np.array([[0, 0, 1, 1, 255],
               [0, 0, 2, 2, 255]])
LABELS = np.array([[0, 255, 1, 2, 1],
                   [1, 0, 255, 2, 255]])


def test_confident_area_scores_by_hand():
    res = confident_area_scores([LABELS], [GT], num_classes=3)
    # labelled a class: (0,2)✓ (0,3)✗ (1,0)✗ (1,3)✓ → 1/2; GT fg (0,2) (0,3) (1,2) (1,3): 2 right → 1/2
    assert res["fg_precision"] == 0.5 and res["fg_recall"] == 0.5
    # labelled background: (0,0) (1,1), both right; GT background: 4 pixels, 2 labelled background
    assert res["bg_precision"] == 1.0 and res["bg_recall"] == 0.5
    assert res["fraction_ignored"] == 0.25  # (0,1) and (1,2) of the 8 non-void pixels
    acc = ConfidentAreaAccumulator(3)
    acc.add(LABELS[:, :2], GT[:, :2])
    other = ConfidentAreaAccumulator(3)
    other.add(LABELS[:, 2:], GT[:, 2:])
    assert acc.merge(other).summarize() == res


def test_confident_area_scores_empty():
    res = ConfidentAreaAccumulator(3).summarize()
    for key in ("fg_precision", "fg_recall", "bg_precision", "bg_recall", "fraction_ignored"):
        assert res[key] == 0.0
    assert confident_area_scores([], [], 3)["fg_precision"] == 0.0
    with pytest.raises(ValueError, match="label maps"):
        confident_area_scores([LABELS], [], 3)
