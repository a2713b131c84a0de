"""mweight.metrics against hand-computed values (MMSA convention, DATA.md "Metrics")."""
import json
import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error

from mweight.errors import MWeightError
from mweight.metrics import (
    CLASSIFICATION_METRICS,
    METRIC_LABELS,
    METRIC_MODES,
    REGRESSION_METRICS,
    compute_metrics,
    select_metric,
)

# Hand-worked example. Row by row (round = half to even, r7 = round(clip(x, -3, 3)),
# r5 = round(clip(x, -2, 2))):
#   p     t     r7(p) r7(t) acc7 | r5(p) r5(t) acc5 | t>=0 p>=0 has0 | non0 (t>0, p>0)
#   2.5   2.0    2     2    T    |  2     2    T    |  T    T    T   |  T T   T
#  -0.5   0.0   -0     0    T    | -0     0    T    |  T    F    F   |  dropped (t == 0)
#   0.4   1.0    0     1    F    |  0     1    F    |  T    T    T   |  T T   T
#  -1.6  -2.0   -2    -2    T    | -2    -2    T    |  F    F    T   |  F F   T
#   3.7   2.6    3     3    T    |  2     2    T    |  T    T    T   |  T T   T
#   0.0  -0.3    0    -0    T    |  0    -0    T    |  F    T    F   |  F F   T
#  -2.4  -3.0   -2    -3    F    | -2    -2    T    |  F    F    T   |  F F   T
#   1.5   0.0    2     0    F    |  2     0    F    |  T    T    T   |  dropped (t == 0)
#   0.5   0.4    0     0    T    |  0     0    T    |  T    T    T   |  T T   T
# (half away from zero would give 2.5 -> 3, -0.5 -> -1, 0.5 -> 1 and acc7 = 3/9.)
P = [2.5, -0.5, 0.4, -1.6, 3.7, 0.0, -2.4, 1.5, 0.5]
T = [2.0, 0.0, 1.0, -2.0, 2.6, -0.3, -3.0, 0.0, 0.4]


def test_hand_computed_regression_example():
    m = compute_metrics(P, T, "regression")
    assert list(m) == list(REGRESSION_METRICS)
    assert m["mae"] == pytest.approx(5.6 / 9)
    assert m["acc7"] == pytest.approx(6 / 9)
    assert m["acc5"] == pytest.approx(7 / 9)
    assert m["acc2_has0"] == pytest.approx(7 / 9)
    # has0 confusion: positive class P=5/6, R=5/6 (support 6); negative P=2/3, R=2/3 (support 3)
    assert m["f1_has0"] == pytest.approx((6 * 5 / 6 + 3 * 2 / 3) / 9)
    # non0 drops the two t == 0 rows; p = 0.0 with t = -0.3 counts as correct here
    assert m["acc2_non0"] == pytest.approx(1.0)
    assert m["f1_non0"] == pytest.approx(1.0)
    assert m["corr"] == pytest.approx(np.corrcoef(P, T)[0, 1])
    assert all(type(v) is float for v in m.values())


@pytest.mark.parametrize(
    "p, t, acc7, acc5",
    [
        ([2.5], [2.0], 1.0, 1.0),  # 2.5 -> 2 (half to even)
        ([3.5], [3.0], 1.0, 1.0),  # clipped to 3 before rounding, 3.5 would round to 4
        ([-0.5], [0.0], 1.0, 1.0),  # -0.5 -> -0 == 0
        ([0.5], [1.0], 0.0, 0.0),  # 0.5 -> 0, not 1
        ([1.5], [2.0], 1.0, 1.0),  # 1.5 -> 2
        ([-2.5], [-2.0], 1.0, 1.0),  # -2.5 -> -2
        ([10.0], [3.0], 1.0, 1.0),  # clip +-3
        ([-10.0], [-2.6], 1.0, 1.0),  # -3 vs -3; -2 vs -2
        ([2.4], [3.4], 0.0, 1.0),  # acc7: 2 vs 3; acc5: both clip to 2
        ([-2.4], [-3.0], 0.0, 1.0),
        ([2.6], [1.6], 0.0, 1.0),  # acc7: 3 vs 2; acc5: 2 vs 2
    ],
)
def test_rounding_half_to_even_and_clipping(p, t, acc7, acc5):
    m = compute_metrics(p, t, "regression")
    assert m["acc7"] == acc7
    assert m["acc5"] == acc5


def test_has0_and_non0_treat_zero_labels_differently():
    # t = 0 is "non-negative" for has0 and dropped for non0; p = 0 is non-negative / not positive
    t = [0.0, 0.0, 1.0, -1.0]
    p = [-0.2, 0.3, 0.0, 0.0]
    m = compute_metrics(p, t, "regression")
    # has0: t>=0 [T,T,T,F], p>=0 [F,T,T,T] -> 2/4
    assert m["acc2_has0"] == pytest.approx(0.5)
    # non0: rows 3,4 only: t>0 [T,F], p>0 [F,F] -> 1/2
    assert m["acc2_non0"] == pytest.approx(0.5)


def test_weighted_f1_hand_computed_asymmetric():
    # positive: support 3, predicted 2, TP 2 -> P=1, R=2/3, F1=0.8
    # negative: support 1, predicted 2, TP 1 -> P=1/2, R=1, F1=2/3
    t = [1.0, 2.0, 0.5, -1.0]
    p = [1.0, 1.0, -1.0, -1.0]
    m = compute_metrics(p, t, "regression")
    weighted = (3 * 0.8 + 1 * 2 / 3) / 4
    assert m["f1_has0"] == pytest.approx(weighted)
    assert m["f1_non0"] == pytest.approx(weighted)
    assert m["acc2_has0"] == pytest.approx(0.75)
    assert m["f1_has0"] != pytest.approx((0.8 + 2 / 3) / 2)  # not macro


def test_corr_hand_computed():
    assert compute_metrics([1, 2, 3], [2, 4, 6], "regression")["corr"] == pytest.approx(1.0)
    assert compute_metrics([1, 2, 3], [3, 2, 1], "regression")["corr"] == pytest.approx(-1.0)
    # centred: [-1.5,-.5,.5,1.5] . [-1.5,.5,-.5,1.5] = 4; both squared norms 5 -> 0.8
    assert compute_metrics([1, 2, 3, 4], [1, 3, 2, 4], "regression")["corr"] == pytest.approx(0.8)


def test_degenerate_constant_predictions_and_all_zero_labels():
    with np.errstate(all="raise"):  # no hidden divide-by-zero
        m = compute_metrics([0.3, 0.3, 0.3], [1.0, -1.0, 2.0], "regression")
    assert m["corr"] == 0.0
    assert m["mae"] == pytest.approx((0.7 + 1.3 + 1.7) / 3)

    m = compute_metrics([0.5, -0.5, 0.0], [0.0, 0.0, 0.0], "regression")
    assert math.isnan(m["acc2_non0"]) and math.isnan(m["f1_non0"])
    assert m["corr"] == 0.0  # constant target
    assert m["acc2_has0"] == pytest.approx(2 / 3)  # all labels non-negative; -0.5 is wrong
    assert m["acc7"] == pytest.approx(1.0)  # 0.5 -> 0, -0.5 -> -0


def test_regression_matches_sklearn_and_numpy_on_random_data():
    rng = np.random.default_rng(0)
    t = np.round(rng.uniform(-3, 3, 500) * 3) / 3  # MOSI-like thirds, includes exact zeros
    t[:20] = 0.0
    p = np.clip(t + rng.normal(0, 0.8, 500), -3.5, 3.5)
    m = compute_metrics(p, t, "regression")
    assert m["mae"] == pytest.approx(mean_absolute_error(t, p))
    assert m["corr"] == pytest.approx(np.corrcoef(p, t)[0, 1])
    assert m["acc2_has0"] == pytest.approx(accuracy_score(t >= 0, p >= 0))
    assert m["f1_has0"] == pytest.approx(f1_score(t >= 0, p >= 0, average="weighted"))
    nz = t != 0
    assert m["acc2_non0"] == pytest.approx(accuracy_score(t[nz] > 0, p[nz] > 0))
    assert m["f1_non0"] == pytest.approx(f1_score(t[nz] > 0, p[nz] > 0, average="weighted"))
    # (N, 1) predictions are accepted as (N,)
    assert compute_metrics(p[:, None], t, "regression") == m


def test_classification_logits_hand_computed():
    logits = [[0.0, 0.0], [math.log(3.0), 0.0]]
    m = compute_metrics(logits, [0, 1], "classification")
    assert list(m) == list(CLASSIFICATION_METRICS)
    assert m["acc"] == pytest.approx(0.5)  # ties go to class 0; row 2 predicts 0
    # class 0: P=1/2, R=1, F1=2/3 (support 1); class 1: F1=0 (support 1)
    assert m["f1"] == pytest.approx(1 / 3)
    # -log(1/2) and -log(1/4)
    assert m["ce"] == pytest.approx((math.log(2) + math.log(4)) / 2)


def test_classification_labels_match_sklearn():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 3, 300)
    pred = np.where(rng.random(300) < 0.6, t, rng.integers(0, 3, 300))
    m = compute_metrics(pred, t, "classification")
    assert set(m) == {"acc", "f1"}
    assert m["acc"] == pytest.approx(accuracy_score(t, pred))
    assert m["f1"] == pytest.approx(f1_score(t, pred, average="weighted"))
    logits = np.eye(3)[pred] * 5.0
    assert compute_metrics(logits, t, "classification")["acc"] == m["acc"]


def test_selection_metric_and_labels():
    assert select_metric("regression") == ("mae", "min")
    assert select_metric("classification") == ("ce", "min")  # accuracy ties kept untrained heads (issue 10)
    for key in REGRESSION_METRICS + CLASSIFICATION_METRICS:
        assert key in METRIC_LABELS and METRIC_MODES[key] in ("min", "max")
    assert "non0" in METRIC_LABELS["acc2_non0"] and "zeros dropped" in METRIC_LABELS["acc2_non0"]
    assert "has0" in METRIC_LABELS["acc2_has0"] and "non-negative" in METRIC_LABELS["acc2_has0"]
    assert "half to even" in METRIC_LABELS["acc7"]


@pytest.mark.parametrize(
    "pred, target, task",
    [
        ([1.0, 2.0], [1.0], "regression"),
        ([], [], "regression"),
        ([float("nan"), 1.0], [0.0, 1.0], "regression"),
        ([1.0], [1.0], "ranking"),
        ([[0.1, 0.2]], [2], "classification"),
        ([0.5, 1.0], [0, 1], "classification"),
    ],
)
def test_invalid_inputs_raise_one_line_errors(pred, target, task):
    with pytest.raises(MWeightError) as exc:
        compute_metrics(pred, target, task)
    assert "\n" not in str(exc.value)


def test_results_are_json_serialisable():
    m = compute_metrics(P, T, "regression")
    assert json.loads(json.dumps(m)) == m
