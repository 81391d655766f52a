"""Preparing a supplier's dataset: read a CSV, cut it into committed groups, and a baseline.

Classification labels may be strings: they become the integers 0..k-1 in sorted order of the
names, which the task's label column records (`species[setosa|versicolor|virginica]`).

The whole labelled dataset is shuffled and cut into G groups; each group is committed as
H(nonce || CID) with a fresh 32-byte nonce. The chain later draws which groups are the test
set, so the supplier cannot choose one unlike the training data.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass

import numpy as np

from wekacoin.chain.tasks import group_commitment
from wekacoin.client.chainclient import ClientError
from wekacoin.content.cid import compute_cid
from wekacoin.evaluation.data import DataError, DataSchema, parse_group, split_into_groups
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


CLASS_NAMES = re.compile(r"^(?P<label>.+)\[(?P<names>[^\[\]]*)\]$")
"""A label column `species[setosa|versicolor|virginica]`: the labels were the strings named,
mapped to 0, 1, 2 in that (sorted) order. The chain's DataSchema has no field for class
names, so the schema's label column carries them, on the chain for every trainer to read."""
MAX_COLUMN_CHARS = 256  # the chain's limit on a column name (chain.tasks)


def read_header(data: bytes) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(data.decode("utf-8").split("\n", 1)[0])))
    except (UnicodeDecodeError, StopIteration):
        raise ClientError("the dataset is not a UTF-8 CSV with a header row") from None


def get_class_names(label_column: str) -> list[str] | None:
    """The class names recorded in a label column (index = integer label), or None."""
    match = CLASS_NAMES.match(label_column)
    return None if match is None else match["names"].split("|")


def label_column_with_classes(label: str, names: list[str]) -> str:
    column = f"{label}[{'|'.join(names)}]"
    bad = [n for n in names if not n or not n.isprintable() or any(c in n for c in ',"|[]')]
    if bad:
        raise ClientError(f"class name {bad[0]!r} cannot be recorded: class names are printable "
                          "and hold none of , \" | [ ]")
    if len(column) > MAX_COLUMN_CHARS:
        raise ClientError(f"the {len(names)} class names take {len(column)} characters in the "
                          f"label column, the chain allows {MAX_COLUMN_CHARS}: shorten them or "
                          "map them to integers 0..k-1 yourself")
    return column


def _map_string_labels(data: bytes, label: str) -> tuple[bytes, str]:
    """The CSV with its string labels replaced by integers (in sorted order of the names) and
    the label column renamed to record them; unchanged when every label is an integer."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    header, body = rows[0], [r for r in rows[1:] if r]
    j = header.index(label)
    values = [r[j] if j < len(r) else "" for r in body]
    if all(_is_integer(v) for v in values):
        return data, label
    names = sorted(set(values))
    if "" in names:
        raise ClientError(f"column {label!r} has an empty label on line "
                          f"{values.index('') + 2}")
    column = label_column_with_classes(label, names)
    code = {name: str(i) for i, name in enumerate(names)}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([column if c == label else c for c in header])
    for r in body:
        writer.writerow([code[c] if i == j else c for i, c in enumerate(r)])
    return out.getvalue().encode(), column


def _is_integer(text: str) -> bool:
    return text.strip().lstrip("+-").isdigit()


def prepare_dataset(
    data: bytes, label: str, kind: TaskKind, groups: int, *, features: tuple[str, ...] = (),
    seed: int | None = None,
) -> PreparedData:
    """Cut a labelled CSV into `groups` committed groups. String class labels (classification)
    become integers in sorted order of the names, recorded in the label column's name."""
    header = read_header(data)
    if label not in header:
        raise ClientError(f"the dataset has no column {label!r} (columns: {', '.join(header)})")
    if kind is TaskKind.CLASSIFICATION:
        data, label_column = _map_string_labels(data, label)
        header = [label_column if c == label else c for c in header]
    else:
        label_column = label
    features = features or tuple(c for c in header if c != label_column)
    try:
        schema = DataSchema(tuple(features), label_column, kind)
        dataset = parse_group(data, schema, max_bytes=len(data) + 1)
    except DataError as e:
        raise ClientError(f"the dataset does not parse as task data: {e}") from None
    if not 1 <= groups <= len(dataset.labels):
        raise ClientError(f"cannot cut {len(dataset.labels)} rows into {groups} groups")
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
