"""skops models (scikit-learn estimators): size checks on the zip, then skops' safe loader.

Runs inside the sandbox. `skops.io.loads` is called with skops' default trusted types only:
no `trusted=` list ever, and certainly not one read from the file, so a schema naming
`os.system`, `builtins.eval` or a tree model's `Tree` is refused. Every tree model is refused
that way (NOTES.md), which leaves linear models and other plain-array estimators: trees travel
as ONNX.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import numpy as np

from wekacoin.evaluation.formats import ModelRejected, shorten
from wekacoin.types.metric import TaskKind

MAX_MEMBERS = 10_000


def load(model_bytes: bytes, max_unpacked_bytes: int) -> SkopsPredictor:
    import skops.io  # imported per model process: the fork server stays lean for ONNX

    try:
        with zipfile.ZipFile(io.BytesIO(model_bytes)) as archive:
            members = archive.infolist()
            unpacked = sum(m.file_size for m in members)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ModelRejected(f"not a valid skops zip ({shorten(str(e), 120)}): save it with "
                            "skops.io.dump") from e
    if len(members) > MAX_MEMBERS:
        raise ModelRejected(f"zip has {len(members)} members, at most {MAX_MEMBERS} allowed")
    if unpacked > max_unpacked_bytes:
        # zipfile never inflates a member past its declared size, so this bounds the bomb.
        raise ModelRejected(f"zip expands to {unpacked} bytes, limit {max_unpacked_bytes}")
    try:
        estimator = skops.io.loads(model_bytes)
    except skops.io.exceptions.UntrustedTypesFoundException as e:
        raise ModelRejected(untrusted_types_problem(model_bytes, e)) from e
    except Exception as e:  # a crafted schema can fail anywhere inside skops' loaders
        raise ModelRejected(
            f"skops could not load the model ({type(e).__name__}: {shorten(str(e), 120)}): "
            "save it with skops.io.dump, or export it to ONNX"
        ) from e
    return SkopsPredictor(estimator)


def untrusted_types_problem(model_bytes: bytes, e: Exception) -> str:
    """Which types outside skops' defaults the file names, and what to do instead."""
    import skops.io

    try:
        names = [str(n) for n in skops.io.get_untrusted_types(data=model_bytes)]
    except Exception:  # the same crafted schema may fail here too: the message still says
        names = re.findall(r"'([\w.]+)'", str(e).split("\n", 1)[0])
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    if any(".tree." in n or n.startswith("lightgbm") or n.startswith("xgboost") for n in names):
        fix = "tree models travel as ONNX (skl2onnx, onnxmltools), see docs/models.md"
    else:
        fix = "only skops' default trusted types load: export the model to ONNX, see docs/models.md"
    return f"skops file names untrusted types ({shorten(shown, 120) or 'unknown'}): {fix}"


class SkopsPredictor:
    def __init__(self, estimator: Any) -> None:
        """`estimator`: whatever object the trainer's skops file holds (duck-typed, untrusted)."""
        if not callable(getattr(estimator, "predict", None)):
            raise ModelRejected("the skops object has no predict method")
        self._estimator = estimator

    def predict(self, features: np.ndarray, kind: TaskKind, want_proba: bool) -> list[np.ndarray]:
        """Same arrays as the ONNX predictor: [values] or [labels(, probabilities, classes)]."""
        est, n = self._estimator, features.shape[0]
        try:
            out = np.asarray(est.predict(features))
            if kind is TaskKind.REGRESSION:
                return [_vector(out, n, np.floating).astype(np.float64)]
            labels = _vector(out, n, np.integer).astype(np.int64)
            if not want_proba:
                return [labels]
            proba = np.asarray(est.predict_proba(features), dtype=np.float64)
            classes = np.asarray(est.classes_)
        except ModelRejected:
            raise
        except Exception as e:  # the estimator is the trainer's: any failure is theirs
            raise ModelRejected(
                f"prediction failed: {type(e).__name__}: {shorten(str(e), 160)}"
            ) from e
        if not np.issubdtype(classes.dtype, np.integer) or proba.shape != (n, len(classes)):
            raise ModelRejected("classes_ must be integers matching predict_proba's columns")
        return [labels, proba, classes.astype(np.int64)]


def _vector(a: np.ndarray, n: int, dtype: type) -> np.ndarray:
    if a.shape not in ((n,), (n, 1)) or not np.issubdtype(a.dtype, dtype):
        raise ModelRejected(
            f"predict gave {a.dtype} {a.shape}, expected ({n},) of {dtype.__name__}"
        )
    return a.reshape(n)
