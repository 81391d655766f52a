"""Shared pieces for the evaluator's tests: one sandbox, bundled datasets, real models."""

from __future__ import annotations

import atexit
import functools
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn import datasets

from wekacoin.evaluation.data import DataSchema, split_into_groups
from wekacoin.evaluation.sandbox import ForkServerSandbox
from wekacoin.types.metric import TaskKind


@functools.cache
def shared_sandbox() -> ForkServerSandbox:
    """One fork server for the whole test session (starting one costs about a second).

    It preloads skops, so skops models do not pay for importing scikit-learn each time."""
    sandbox = ForkServerSandbox(preload=("skops.io",))
    sandbox.start()
    atexit.register(sandbox.close)
    return sandbox


@dataclass(frozen=True)
class TaskData:
    schema: DataSchema
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    training_groups: dict[int, bytes]
    test_groups: dict[int, bytes]


_LOADERS = {
    "iris": datasets.load_iris,
    "breast_cancer": datasets.load_breast_cancer,
    "wine": datasets.load_wine,
    "digits": datasets.load_digits,
    "diabetes": datasets.load_diabetes,
}


@functools.cache
def task_data(name: str, groups: int = 5, test_group: int = 1) -> TaskData:
    """A bundled dataset cut into CSV groups; group `test_group` is the test set."""
    X, y = _LOADERS[name](return_X_y=True)
    kind = TaskKind.REGRESSION if name == "diabetes" else TaskKind.CLASSIFICATION
    schema = DataSchema(tuple(f"x{i}" for i in range(X.shape[1])), "target", kind)
    blobs = split_into_groups(X, y, schema, groups, seed=7)
    order = np.random.default_rng(7).permutation(len(y))
    parts = np.array_split(order, groups)
    test_rows = parts[test_group]
    train_rows = np.concatenate([p for i, p in enumerate(parts) if i != test_group])
    return TaskData(
        schema,
        X[train_rows],
        y[train_rows],
        X[test_rows],
        y[test_rows],
        {i: b for i, b in enumerate(blobs) if i != test_group},
        {test_group: blobs[test_group]},
    )


def to_onnx_bytes(estimator: object, X: np.ndarray, **options: object) -> bytes:
    from skl2onnx import to_onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return to_onnx(
            estimator, X[:1].astype(np.float32), options=dict(options) or None
        ).SerializeToString()


def to_skops_bytes(estimator: object) -> bytes:
    import skops.io

    return skops.io.dumps(estimator)


def fit(estimator: object, X: np.ndarray, y: np.ndarray) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings on small iteration counts
        return estimator.fit(X, y)  # type: ignore[attr-defined]


def _estimator(name: str) -> object:
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)),
        "forest": lambda: RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0),
        "boosting": lambda: GradientBoostingClassifier(n_estimators=20, random_state=0),
        "mlp": lambda: make_pipeline(
            StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), max_iter=60, random_state=0)
        ),
        "mlp_reg": lambda: make_pipeline(
            StandardScaler(), MLPRegressor(hidden_layer_sizes=(16,), max_iter=200, random_state=0)
        ),
        "boosting_reg": lambda: GradientBoostingRegressor(n_estimators=20, random_state=0),
        "linear": lambda: LinearRegression(),
        "logistic": lambda: LogisticRegression(max_iter=500),
    }[name]()


@functools.cache
def trained(dataset: str, name: str) -> object:
    data = task_data(dataset)
    return fit(_estimator(name), data.X_train, data.y_train)


@functools.cache
def model_bytes(dataset: str, name: str, fmt: str = "onnx") -> bytes:
    """A real model, trained on the dataset's training groups, in ONNX or skops."""
    model = trained(dataset, name)
    if fmt == "skops":
        return to_skops_bytes(model)
    X = task_data(dataset).X_train
    if name == "mlp":  # cover tensor probabilities (column j is class j) as well as ZipMap
        return to_onnx_bytes(model, X, zipmap=False)
    return to_onnx_bytes(model, X)
