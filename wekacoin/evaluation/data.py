"""Task data: CSV group blobs <-> numpy arrays, parsed the same way on every node.

The format is a strict subset of CSV, so that two nodes can never read one blob differently:
- UTF-8 (no byte-order mark), lines end in "\\n" or "\\r\\n", the last line break is optional;
- no quoting: names and cells contain no comma, quote or line break;
- the header is exactly the schema's feature columns, in order, then the label column
  (for `parse_features` the label column may also be absent);
- every feature cell is a decimal number (`-1.5`, `2`, `.5`, `3e-7`), never `nan`, `inf`,
  an empty cell, spaces or `_`; the value is Python's correctly rounded float64 of the text;
- a classification label is an integer (`[+-]?digits`, int64 range); a regression label is a
  decimal number like a feature.
Anything else raises `DataError`, which callers report as "task data invalid".
A split (training or test) is the concatenation of its groups in ascending group index.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from wekacoin.errors import WekaError
from wekacoin.types.metric import TaskKind

MAX_GROUP_BYTES = 64 * 1024 * 1024
"""Default cap on one group blob; a bigger blob is refused before it is decoded."""

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_INTEGER = r"[+-]?\d+"
_NUMBER_RE = re.compile(_NUMBER)
_INTEGER_RE = re.compile(_INTEGER)
_FORBIDDEN_IN_NAMES = re.compile(r'[,"\r\n]')


class DataError(WekaError):
    """Task data is malformed or does not match the task's schema."""


@dataclass(frozen=True)
class DataSchema:
    feature_columns: tuple[str, ...]
    label_column: str
    kind: TaskKind

    def __post_init__(self) -> None:
        names = (*self.feature_columns, self.label_column)
        if not self.feature_columns:
            raise DataError("a schema needs at least one feature column")
        if len(set(names)) != len(names):
            raise DataError("column names must be unique")
        for name in names:
            if not name or _FORBIDDEN_IN_NAMES.search(name):
                raise DataError(f"column name {name!r} is empty or has a comma, quote or newline")


@dataclass(frozen=True)
class Dataset:
    features: np.ndarray  # float64 (n, d)
    labels: np.ndarray  # int64 (n,) for classification, float64 (n,) for regression


def parse_group(blob: bytes, schema: DataSchema, *, max_bytes: int = MAX_GROUP_BYTES) -> Dataset:
    """One group blob, with its label column."""
    _, rows = _rows(blob, schema, max_bytes, allow_unlabelled=False)
    d = len(schema.feature_columns)
    row_re = re.compile(f"(?:{_NUMBER},){{{d}}}{_label_pattern(schema.kind)}")
    _check_rows(rows, row_re, schema)
    cells = ",".join(rows).split(",")
    features = _floats([c for i, c in enumerate(cells) if i % (d + 1) != d]).reshape(len(rows), d)
    label_cells = cells[d :: d + 1]
    if schema.kind is TaskKind.CLASSIFICATION:
        labels = _integers(label_cells)
    else:
        labels = _floats(label_cells)
    return Dataset(features, labels)


def parse_split(
    groups: Mapping[int, bytes], schema: DataSchema, *, max_bytes: int = MAX_GROUP_BYTES
) -> Dataset:
    """The concatenation of the groups in ascending group index."""
    if not groups:
        raise DataError("a split needs at least one group")
    parts = []
    for index in sorted(groups):
        try:
            parts.append(parse_group(groups[index], schema, max_bytes=max_bytes))
        except DataError as e:
            raise DataError(f"group {index}: {e}") from e
    return Dataset(
        np.concatenate([p.features for p in parts]), np.concatenate([p.labels for p in parts])
    )


def parse_features(
    blob: bytes, schema: DataSchema, *, max_bytes: int = MAX_GROUP_BYTES
) -> np.ndarray:
    """Features only, for prediction: the header may omit the label column; labels are ignored."""
    header, rows = _rows(blob, schema, max_bytes, allow_unlabelled=True)
    d = len(schema.feature_columns)
    labelled = len(header) == d + 1
    tail = f",{_label_pattern(schema.kind)}" if labelled else ""
    _check_rows(rows, re.compile(f"{_NUMBER}(?:,{_NUMBER}){{{d - 1}}}{tail}"), schema)
    table = [row.split(",")[:d] for row in rows]
    return _floats([c for row in table for c in row]).reshape(len(rows), d)


def encode_group(features: np.ndarray, labels: np.ndarray, schema: DataSchema) -> bytes:
    """The canonical blob for these rows: what `parse_group` reads back bit for bit."""
    features = np.asarray(features, dtype=np.float64)
    n, d = features.shape
    if d != len(schema.feature_columns) or len(labels) != n or n == 0:
        raise DataError("features, labels and schema disagree in size, or there are no rows")
    if not np.all(np.isfinite(features)):
        raise DataError("features contain NaN or infinity")
    if schema.kind is TaskKind.CLASSIFICATION:
        as_float = np.asarray(labels, dtype=np.float64)
        if not (np.all(np.isfinite(as_float)) and np.array_equal(as_float, np.round(as_float))):
            raise DataError("classification labels must be integers")
        label_text = [str(int(v)) for v in labels]
    else:
        values = np.asarray(labels, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise DataError("regression labels contain NaN or infinity")
        label_text = [repr(float(v)) for v in values]
    lines = [",".join((*schema.feature_columns, schema.label_column))]
    for row, label in zip(features.tolist(), label_text, strict=True):
        lines.append(",".join(map(repr, row)) + "," + label)
    return ("\n".join(lines) + "\n").encode("utf-8")


def split_into_groups(
    features: np.ndarray,
    labels: np.ndarray,
    schema: DataSchema,
    groups: int,
    *,
    seed: int | None = None,
) -> list[bytes]:
    """Cut a dataset into `groups` blobs of near-equal size (shuffled first when `seed` is given).

    Group i holds a contiguous slice of the (shuffled) rows, so concatenating the blobs in
    index order gives the rows back in that order.
    """
    n = len(labels)
    if not 1 <= groups <= n:
        raise DataError(f"cannot cut {n} rows into {groups} non-empty groups")
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    features, labels = np.asarray(features)[order], np.asarray(labels)[order]
    return [
        encode_group(features[part], labels[part], schema)
        for part in np.array_split(np.arange(n), groups)
    ]


def _label_pattern(kind: TaskKind) -> str:
    return _INTEGER if kind is TaskKind.CLASSIFICATION else _NUMBER


def _rows(
    blob: bytes, schema: DataSchema, max_bytes: int, *, allow_unlabelled: bool
) -> tuple[list[str], list[str]]:
    """The header cells and the data lines, after the checks that need no parsing."""
    if len(blob) > max_bytes:
        raise DataError(f"blob of {len(blob)} bytes exceeds the limit of {max_bytes}")
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8: {e}") from e
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    lines = [line.removesuffix("\r") for line in lines]
    if not lines:
        raise DataError("empty blob")
    header = lines[0].split(",")
    expected = [*schema.feature_columns, schema.label_column]
    if header != expected and not (allow_unlabelled and header == expected[:-1]):
        raise DataError(f"header {header[:8]!r} does not match the schema {expected[:8]!r}")
    if len(lines) == 1:
        raise DataError("no data rows")
    return header, lines[1:]


def _check_rows(rows: Sequence[str], row_re: re.Pattern[str], schema: DataSchema) -> None:
    for i, row in enumerate(rows):
        if not row_re.fullmatch(row):
            raise DataError(f"line {i + 2}: {_explain(row, schema)}")


def _explain(row: str, schema: DataSchema) -> str:
    cells = row.split(",")
    d = len(schema.feature_columns)
    if len(cells) not in (d, d + 1):
        return f"{len(cells)} cells, expected {d + 1}"
    for j, cell in enumerate(cells):
        is_label = j == d
        pattern = _INTEGER_RE if is_label and schema.kind is TaskKind.CLASSIFICATION else _NUMBER_RE
        if not pattern.fullmatch(cell):
            what = "label" if is_label else f"column {schema.feature_columns[j]!r}"
            expected = "integer" if pattern is _INTEGER_RE else "number"
            return f"{what}: {cell[:40]!r} is not a{'n' * (expected == 'integer')} {expected}"
    return "malformed row"


def _floats(cells: Sequence[str]) -> np.ndarray:
    values = np.fromiter(map(float, cells), dtype=np.float64, count=len(cells))
    if not np.all(np.isfinite(values)):
        raise DataError("a number overflows float64")
    return values


def _integers(cells: Sequence[str]) -> np.ndarray:
    try:
        return np.fromiter(map(int, cells), dtype=np.int64, count=len(cells))
    except (OverflowError, ValueError) as e:
        raise DataError(f"a label is outside the int64 range: {e}") from e
