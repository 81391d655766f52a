"""Preparing a supplier's dataset: read a CSV, cut it into committed groups, and a baseline.

The whole labelled dataset is shuffled and cut into G groups; each group is committed as
H(nonce || CID) with a fresh 32-byte nonce. The chain later draws which groups are the test
set, so the supplier cannot choose one unlike the training data.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass

import numpy as np

from wekacoin.chain.tasks import group_commitment
from wekacoin.client.chainclient import ClientError
from wekacoin.content.cid import compute_cid
from wekacoin.evaluation.data import DataSchema, parse_group, split_into_groups
from wekacoin.types.metric import TaskKind


@dataclass(frozen=True)
class PreparedData:
    schema: DataSchema
    groups: list[bytes]
    cids: list[str]
    nonces: list[bytes]

    @property
    def commitments(self) -> tuple[bytes, ...]:
        return tuple(group_commitment(n, c) for n, c in zip(self.nonces, self.cids, strict=True))


def read_header(data: bytes) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(data.decode("utf-8").split("\n", 1)[0])))
    except (UnicodeDecodeError, StopIteration):
        raise ClientError("the dataset is not a UTF-8 CSV with a header row") from None


def prepare_dataset(
    data: bytes, label: str, kind: TaskKind, groups: int, *, features: tuple[str, ...] = (),
    seed: int | None = None,
) -> PreparedData:
    header = read_header(data)
    if label not in header:
        raise ClientError(f"the dataset has no column {label!r} (columns: {', '.join(header)})")
    features = features or tuple(c for c in header if c != label)
    schema = DataSchema(tuple(features), label, kind)
    dataset = parse_group(data, schema, max_bytes=len(data) + 1)
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "big")
    blobs = split_into_groups(dataset.features, dataset.labels, schema, groups, seed=seed)
    return PreparedData(schema, blobs, [compute_cid(b) for b in blobs],
                        [os.urandom(32) for _ in blobs])


def dataset_from_arrays(X: np.ndarray, y: np.ndarray, names: list[str], label: str,
                        kind: TaskKind) -> bytes:
    """A CSV (header + rows) from arrays: the demo builds its dataset this way."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*names, label])
    for row, target in zip(X, y, strict=True):
        cell = int(target) if kind is TaskKind.CLASSIFICATION else repr(float(target))
        writer.writerow([repr(float(v)) for v in row] + [cell])
    return out.getvalue().encode()


def train_baseline(kind: TaskKind, features: np.ndarray, labels: np.ndarray) -> bytes:
    """A deliberately simple baseline as ONNX: a one-split decision stump."""
    from skl2onnx import to_onnx
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    tree = DecisionTreeClassifier if kind is TaskKind.CLASSIFICATION else DecisionTreeRegressor
    model = tree(max_depth=1, random_state=0)
    model.fit(features, labels)
    return to_onnx(model, features[:1].astype(np.float32),
                   options={"zipmap": False} if kind is TaskKind.CLASSIFICATION else None,
                   target_opset=17).SerializeToString()
