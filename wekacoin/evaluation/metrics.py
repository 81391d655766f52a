"""The metric registry: which prediction each metric reads, and how a score becomes an integer.

Runs in the trusted parent on arrays the sandbox returned; every check on those arrays here is
a check on untrusted data, so a bad prediction raises `InvalidPrediction`, never crashes.

What each metric reads (n rows, true labels `y`):
- ACCURACY, BALANCED_ACCURACY, COHEN_KAPPA: predicted labels (int64, shape (n,)).
- F1: predicted labels; macro average over the labels present in `y` or the prediction
  (scikit-learn's `average="macro"`, `zero_division=0`), for binary tasks too: no label is
  privileged as "positive".
- ROC_AUC: class probabilities. With exactly two classes in `y`, the binary AUC of the larger
  label's probability column. With more, one-vs-rest macro: the mean over the classes present in
  `y` of the binary AUC of that class's column (equal to scikit-learn's `multi_class="ovr"`
  when the model knows every class). A class the model does not know scores a column of zeros.
- LOG_LOSS: class probabilities, columns aligned to the union of the model's classes and the
  labels in `y` (a class the model does not know has probability 0, which scikit-learn clips).
- RMSE, MAE, R2: predicted values (float64, shape (n,)).

Probabilities are valid only when every entry is within `PROBABILITY_TOLERANCE` of [0, 1] and
every row sums to 1 within it: float32 models round (a random forest's "1 - p" can give -1e-7).
Log loss clips entries into [0, 1] before scikit-learn sees them; ROC AUC uses them as they
are. The integer score is `round(score * SCORE_SCALE)`: the product is a float64 and Python's
`round` breaks ties to even.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from wekacoin.errors import WekaError
from wekacoin.evaluation.data import DataError
from wekacoin.types.metric import SCORE_SCALE, Metric, TaskKind


class _SklearnMetrics:
    """`sklearn.metrics`, imported on first use: scikit-learn takes 1.5 s to import, and a
    node that never scores a model (or not yet) should not start that much slower."""

    def __getattr__(self, name: str) -> Any:
        from sklearn import metrics

        return getattr(metrics, name)


skm = _SklearnMetrics()

PROBABILITY_TOLERANCE = 1e-4
_QUIET = threading.Lock()


class InvalidPrediction(WekaError):
    """A model's predictions cannot be scored: the model ranks INVALID."""


class Needs(str, Enum):
    LABELS = "labels"
    PROBABILITIES = "probabilities"
    VALUES = "values"


@dataclass(frozen=True)
class Predictions:
    """What a model predicted for n rows; which fields are set depends on the metric's needs."""

    labels: np.ndarray | None = None  # int64 (n,)
    probabilities: np.ndarray | None = None  # float64 (n, k), column j is classes[j]
    classes: np.ndarray | None = None  # int64 (k,), strictly increasing
    values: np.ndarray | None = None  # float64 (n,)


def _roc_auc(y: np.ndarray, p: Predictions) -> float:
    present = np.unique(y)
    if len(present) == 2:
        return float(skm.roc_auc_score(y == present[1], _column(p, present[1])))
    per_class = [skm.roc_auc_score(y == c, _column(p, c)) for c in present]
    return float(np.average(np.asarray(per_class, dtype=np.float64)))


def _log_loss(y: np.ndarray, p: Predictions) -> float:
    assert p.classes is not None
    columns = np.union1d(p.classes, y)
    matrix = np.clip(np.stack([_column(p, c) for c in columns], axis=1), 0.0, 1.0)
    return float(skm.log_loss(y, matrix, labels=columns))


def _column(p: Predictions, label: int) -> np.ndarray:
    assert p.classes is not None and p.probabilities is not None
    where = np.flatnonzero(p.classes == label)
    if len(where) == 0:
        return np.zeros(p.probabilities.shape[0], dtype=np.float64)
    return p.probabilities[:, where[0]]


@dataclass(frozen=True)
class MetricSpec:
    needs: Needs
    compute: Callable[[np.ndarray, Predictions], float]


REGISTRY: dict[Metric, MetricSpec] = {
    Metric.ACCURACY: MetricSpec(Needs.LABELS, lambda y, p: skm.accuracy_score(y, p.labels)),
    Metric.BALANCED_ACCURACY: MetricSpec(
        Needs.LABELS, lambda y, p: skm.balanced_accuracy_score(y, p.labels)
    ),
    Metric.F1: MetricSpec(
        Needs.LABELS,
        lambda y, p: skm.f1_score(y, p.labels, average="macro", zero_division=0.0),
    ),
    Metric.COHEN_KAPPA: MetricSpec(Needs.LABELS, lambda y, p: skm.cohen_kappa_score(y, p.labels)),
    Metric.ROC_AUC: MetricSpec(Needs.PROBABILITIES, _roc_auc),
    Metric.LOG_LOSS: MetricSpec(Needs.PROBABILITIES, _log_loss),
    Metric.RMSE: MetricSpec(Needs.VALUES, lambda y, p: skm.root_mean_squared_error(y, p.values)),
    Metric.MAE: MetricSpec(Needs.VALUES, lambda y, p: skm.mean_absolute_error(y, p.values)),
    Metric.R2: MetricSpec(Needs.VALUES, lambda y, p: skm.r2_score(y, p.values)),
}


def get_needs(metric: Metric) -> Needs:
    return REGISTRY[metric].needs


def check_metric_defined(metric: Metric, kind: TaskKind, y_true: np.ndarray) -> None:
    """Raise DataError when no model could be scored on these true labels."""
    if kind not in metric.kinds:
        raise DataError(f"metric {metric.value} does not apply to {kind.value} tasks")
    if metric is Metric.ROC_AUC and len(np.unique(y_true)) < 2:
        raise DataError("ROC AUC needs at least two classes in the true labels")
    if metric is Metric.R2 and len(y_true) < 2:
        raise DataError("R2 needs at least two rows")


def compute_float_score(metric: Metric, y_true: np.ndarray, predictions: Predictions) -> float:
    """The metric as scikit-learn computes it, after checking the predictions it reads."""
    spec = REGISTRY[metric]
    check_predictions(spec.needs, len(y_true), predictions)
    # catch_warnings swaps the process's filters in and out: one thread at a time (models are
    # scored on several), or one thread's exit would restore filters under another's feet.
    with _QUIET, warnings.catch_warnings():
        # Our own checks above decide validity; scikit-learn's advisory warnings add nothing.
        warnings.simplefilter("ignore")
        try:
            return float(spec.compute(y_true, predictions))
        except ValueError as e:
            raise InvalidPrediction(f"{metric.value} undefined for these predictions: {e}") from e


def compute_score(metric: Metric, y_true: np.ndarray, predictions: Predictions) -> int:
    """The integer score that enters consensus."""
    return to_integer_score(compute_float_score(metric, y_true, predictions))


def to_integer_score(score: float) -> int:
    if not math.isfinite(score):
        raise InvalidPrediction(f"score is not finite: {score}")
    return round(score * SCORE_SCALE)


def check_predictions(needs: Needs, n: int, p: Predictions) -> None:
    """Raise InvalidPrediction unless `p` has what `needs` asks for, for n rows."""
    if needs is Needs.LABELS:
        _check_vector(p.labels, n, np.int64, "labels")
    elif needs is Needs.VALUES:
        _check_vector(p.values, n, np.float64, "values")
        assert p.values is not None
        if not np.all(np.isfinite(p.values)):
            raise InvalidPrediction("predicted values contain NaN or infinity")
    else:
        _check_probabilities(p, n)


def _check_vector(a: np.ndarray | None, n: int, dtype: type, name: str) -> None:
    if a is None:
        raise InvalidPrediction(f"model gave no {name}")
    if a.dtype != dtype or a.shape != (n,):
        raise InvalidPrediction(
            f"{name} must be {np.dtype(dtype).name} of shape ({n},), got {a.dtype.name} {a.shape}"
        )


def _check_probabilities(p: Predictions, n: int) -> None:
    proba, classes = p.probabilities, p.classes
    if proba is None or classes is None:
        raise InvalidPrediction("model gave no class probabilities")
    if classes.dtype != np.int64 or classes.ndim != 1 or len(classes) < 1:
        raise InvalidPrediction("classes must be a non-empty int64 vector")
    if np.any(np.diff(classes) <= 0):
        raise InvalidPrediction("classes must be strictly increasing")
    if proba.dtype != np.float64 or proba.shape != (n, len(classes)):
        raise InvalidPrediction(
            f"probabilities must be float64 of shape ({n}, {len(classes)}), "
            f"got {proba.dtype.name} {proba.shape}"
        )
    if not np.all(np.isfinite(proba)):
        raise InvalidPrediction("probabilities contain NaN or infinity")
    if np.any(proba < -PROBABILITY_TOLERANCE) or np.any(proba > 1.0 + PROBABILITY_TOLERANCE):
        raise InvalidPrediction("probabilities outside [0, 1]")
    if np.any(np.abs(proba.sum(axis=1) - 1.0) > PROBABILITY_TOLERANCE):
        raise InvalidPrediction("probability rows do not sum to 1")
