import numpy as np
import pytest
import torch

from wsis.evaluation.classification import class_average_precision, multilabel_metrics


def test_average_precision_hand_computed():
    # ranks of the positives: 1 and 3 → precision 1 and 2/3
    assert class_average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx((1 + 2 / 3) / 2)
    # sklearn's documented example (no ties): 0.8(+) 0.4(-) 0.35(+) 0.1(-) → 0.8333
    assert class_average_precision(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(5 / 6)
    assert class_average_precision([0.3, 0.2, 0.1], [1, 1, 1]) == 1.0
    # ranks 2 and 3 → (1/2 + 2/3) / 2
    assert class_average_precision(torch.tensor([0.9, 0.5, 0.4]), torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)  # VOC envelope: (1/2, 2/3) → 2/3


def test_average_precision_ties_stable_and_no_positive():
    assert class_average_precision([0.5, 0.5], [0, 1]) == pytest.approx(0.5)  # the earlier (negative) ranks first
    assert class_average_precision([0.5, 0.5], [1, 0]) == 1.0
    assert class_average_precision([0.9, 0.1], [0, 0]) == 0.0
    assert class_average_precision([], []) == 0.0
    with pytest.raises(ValueError):
        class_average_precision([0.1, 0.2], [1])


SCORES = np.array([[0.9, 0.2, 0.6, 0.1],
                   [0.4, 0.7, 0.1, 0.0],
                   [0.8, 0.6, 0.3, 0.2]])
TARGETS = np.array([[1, 0, 0, 0],
                    [1, 1, 0, 0],
                    [0, 1, 0, 0]])


def test_multilabel_metrics_hand_computed():
    res = multilabel_metrics(SCORES, TARGETS, class_names=["a", "b", "c", "d"])
    # AP-a: .9(+) .8(-) .4(+) → 5/6; AP-b: .7(+) .6(+) .2(-) → 1; c and d have no positive: out of the mAP
    assert res["AP-a"] == pytest.approx(5 / 6) and res["AP-b"] == 1.0
    assert "AP-c" not in res and "AP-d" not in res
    assert res["mAP"] == pytest.approx(11 / 12)
    # at 0.5: a: TP 1 FP 1 FN 1 → F1 1/2; b: TP 2 → 1; c: FP 1 → 0; d: nothing predicted, no positive → left out
    assert res["F1_macro"] == pytest.approx(0.5)
    # micro: TP 3, FP 2, FN 1
    assert res["precision"] == pytest.approx(3 / 5) and res["recall"] == pytest.approx(3 / 4)
    assert res["F1"] == pytest.approx(6 / 9)
    assert res["num_images"] == 3
    assert all(isinstance(v, float) for k, v in res.items() if k != "num_images")


def test_multilabel_metrics_threshold_is_inclusive():
    res = multilabel_metrics([[0.5, 0.49]], [[1, 1]])
    assert res["precision"] == 1.0 and res["recall"] == 0.5 and "AP-0" in res


@pytest.mark.parametrize("scores, targets", [(np.zeros((0, 3)), np.zeros((0, 3))), ([], [])])
def test_multilabel_metrics_empty_input(scores, targets):
    res = multilabel_metrics(scores, targets)
    assert res["num_images"] == 0
    for key in ("mAP", "F1", "F1_macro", "precision", "recall"):
        assert res[key] == 0.0


def test_multilabel_metrics_no_positive_no_prediction():
    res = multilabel_metrics(np.full((2, 2), 0.1), np.zeros((2, 2)))
    assert res["mAP"] == 0.0 and res["F1"] == 0.0 and res["F1_macro"] == 0.0 and res["recall"] == 0.0
    assert not any(np.isnan(v) for v in res.values())
