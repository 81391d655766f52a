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
    """One fork server for the whole test session (starting one costs about a second)."""
    sandbox = ForkServerSandbox()
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
        X[train_rows], y[train_rows], X[test_rows], y[test_rows],
        {i: b for i, b in enumerate(blobs) if i != test_group},
        {test_group: blobs[test_group]},
    )


def to_onnx_bytes(estimator: object, X: np.ndarray, **options: object) -> bytes:
    from skl2onnx import to_onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opts = {id(estimator): options} if options else None
        return to_onnx(estimator, X[:1].astype(np.float32), options=opts).SerializeToString()


def to_skops_bytes(estimator: object) -> bytes:
    import skops.io

    return skops.io.dumps(estimator)


def fit(estimator: object, X: np.ndarray, y: np.ndarray) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings on small iteration counts
        return estimator.fit(X, y)  # type: ignore[attr-defined]
