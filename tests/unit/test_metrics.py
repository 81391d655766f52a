"""The metric registry against scikit-learn, the integer rounding, and refusal of bad output."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn import metrics as skm

from wekacoin.evaluation.data import DataError
from wekacoin.evaluation.metrics import (
    REGISTRY,
    InvalidPrediction,
    Needs,
    Predictions,
    check_metric_defined,
    compute_float_score,
    compute_score,
    to_integer_score,
)
from wekacoin.types.metric import SCORE_SCALE, Metric, TaskKind

rng = np.random.default_rng(0)
Y3 = rng.integers(0, 3, size=200)
P3 = rng.dirichlet([1, 1, 1], size=200)
L3 = P3.argmax(axis=1).astype(np.int64)
Y2 = rng.integers(0, 2, size=200)
P2 = rng.dirichlet([1, 1], size=200)
REG_TRUE = rng.normal(size=100)
REG_PRED = REG_TRUE + rng.normal(scale=0.3, size=100)
CLASSES3 = np.array([0, 1, 2], dtype=np.int64)
CLASSES2 = np.array([0, 1], dtype=np.int64)


def proba(p: np.ndarray, classes: np.ndarray) -> Predictions:
    return Predictions(labels=classes[p.argmax(axis=1)], probabilities=p, classes=classes)


@pytest.mark.parametrize(
    "metric, expected",
    [
        (Metric.ACCURACY, skm.accuracy_score(Y3, L3)),
        (Metric.BALANCED_ACCURACY, skm.balanced_accuracy_score(Y3, L3)),
        (Metric.F1, skm.f1_score(Y3, L3, average="macro")),
        (Metric.COHEN_KAPPA, skm.cohen_kappa_score(Y3, L3)),
    ],
)
def test_label_metrics_equal_scikit_learn(metric, expected):
    assert compute_float_score(metric, Y3, Predictions(labels=L3)) == expected


def test_roc_auc_binary_and_multiclass_equal_scikit_learn():
    assert compute_float_score(Metric.ROC_AUC, Y2, proba(P2, CLASSES2)) == skm.roc_auc_score(
        Y2, P2[:, 1]
    )
    assert compute_float_score(Metric.ROC_AUC, Y3, proba(P3, CLASSES3)) == skm.roc_auc_score(
        Y3, P3, multi_class="ovr", average="macro"
    )


def test_log_loss_equals_scikit_learn():
    assert compute_float_score(Metric.LOG_LOSS, Y3, proba(P3, CLASSES3)) == skm.log_loss(Y3, P3)


@pytest.mark.parametrize(
    "metric, fn",
    [
        (Metric.RMSE, skm.root_mean_squared_error),
        (Metric.MAE, skm.mean_absolute_error),
        (Metric.R2, skm.r2_score),
    ],
)
def test_regression_metrics_equal_scikit_learn(metric, fn):
    assert compute_float_score(metric, REG_TRUE, Predictions(values=REG_PRED)) == fn(
        REG_TRUE, REG_PRED
    )


def test_every_metric_is_registered_with_what_it_reads():
    assert set(REGISTRY) == set(Metric)
    for metric, spec in REGISTRY.items():
        reads_values = spec.needs is Needs.VALUES
        assert reads_values == (metric.kinds == {TaskKind.REGRESSION})


def test_unknown_class_in_the_truth_scores_as_a_zero_column():
    """A model that never saw class 2: ROC AUC gives that class 0.5, log loss is clipped."""
    p = P2
    y = np.where(Y2 == 1, 2, Y2)[:50]
    y[:3] = 1  # classes present: 0, 1, 2; the model knows only 0 and 1
    pred = proba(p[:50], CLASSES2)
    auc = compute_float_score(Metric.ROC_AUC, y, pred)
    manual = np.mean(
        [skm.roc_auc_score(y == 0, p[:50, 0]), skm.roc_auc_score(y == 1, p[:50, 1]), 0.5]
    )
    assert auc == pytest.approx(manual, abs=1e-15)
    assert math.isfinite(compute_float_score(Metric.LOG_LOSS, y, pred))


@pytest.mark.parametrize(
    "score, product, expected",
    [
        (2.5e-6, 2.5, 2),  # exact ties in float64 go to the even neighbour
        (3.5e-6, 3.5, 4),
        (0.1234565, 123456.5, 123456),
        (0.4999995, 499999.5, 500000),
        (0.5000005, 500000.49999999994, 500000),  # not a tie once multiplied in float64
    ],
)
def test_integer_score_rounds_half_to_even_on_the_float64_product(score, product, expected):
    assert score * SCORE_SCALE == product
    assert to_integer_score(score) == expected


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_integer_score_is_round_of_the_scaled_float(x):
    assert to_integer_score(x) == round(x * SCORE_SCALE)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_score_is_refused(bad):
    with pytest.raises(InvalidPrediction):
        to_integer_score(bad)


@pytest.mark.parametrize(
    "values",
    [
        np.array([1.0, np.nan, 2.0]),
        np.array([1.0, np.inf, 2.0]),
        np.array([1.0, 2.0]),  # wrong length
        np.array([1, 2, 3]),  # wrong dtype
    ],
)
def test_bad_regression_predictions_are_refused(values):
    with pytest.raises(InvalidPrediction):
        compute_score(Metric.RMSE, np.array([1.0, 2.0, 3.0]), Predictions(values=values))


@pytest.mark.parametrize(
    "probabilities, classes",
    [
        (np.array([[0.5, 0.6], [0.5, 0.5]]), CLASSES2),  # row sums to 1.1
        (np.array([[np.nan, 1.0], [0.5, 0.5]]), CLASSES2),
        (np.array([[-0.5, 1.5], [0.5, 0.5]]), CLASSES2),
        (np.array([[0.5, 0.5], [0.5, 0.5]]), np.array([1, 0], dtype=np.int64)),  # not increasing
        (np.array([[1.0], [1.0]]), CLASSES2),  # columns do not match classes
    ],
)
def test_bad_probabilities_are_refused(probabilities, classes):
    pred = Predictions(labels=np.array([0, 1]), probabilities=probabilities, classes=classes)
    with pytest.raises(InvalidPrediction):
        compute_score(Metric.LOG_LOSS, np.array([0, 1]), pred)


def test_float32_rounding_just_outside_zero_and_one_is_tolerated():
    """A random forest's "1 - p" in float32 gives -1.2e-7: a real model, not an invalid one."""
    p = np.array([[-1.1920928955078125e-07, 1.0000001192092896], [0.25, 0.75]])
    pred = Predictions(labels=np.array([1, 1]), probabilities=p, classes=CLASSES2)
    y = np.array([1, 0])
    assert compute_float_score(Metric.LOG_LOSS, y, pred) == skm.log_loss(y, np.clip(p, 0, 1))
    assert compute_float_score(Metric.ROC_AUC, y, pred) == skm.roc_auc_score(y, p[:, 1])


def test_missing_or_mistyped_labels_are_refused():
    with pytest.raises(InvalidPrediction):
        compute_score(Metric.ACCURACY, Y3, Predictions())
    with pytest.raises(InvalidPrediction):
        compute_score(Metric.ACCURACY, Y3, Predictions(labels=L3.astype(np.float64)))


def test_metric_undefined_on_the_data_is_a_data_error():
    with pytest.raises(DataError):
        check_metric_defined(Metric.ROC_AUC, TaskKind.CLASSIFICATION, np.zeros(10, dtype=np.int64))
    with pytest.raises(DataError):
        check_metric_defined(Metric.RMSE, TaskKind.CLASSIFICATION, Y3)
    check_metric_defined(Metric.ROC_AUC, TaskKind.CLASSIFICATION, Y3)


def test_scores_are_identical_across_repeated_computation():
    pred = proba(P3, CLASSES3)
    scores = {compute_score(m, Y3, pred) for m in [Metric.LOG_LOSS] * 5}
    assert len(scores) == 1
