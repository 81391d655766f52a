"""The code a model process runs: load the model from its bytes, predict on each dataset.

The fork server calls `warm_up()` once, and in each child `warm_up()` again while it waits,
`prepare(args)` before confining it (only in a child forked for a job whose `prepare_key` is
not None), and `run(args, blob, datasets)` once its job came. `run` returns the arrays the
parent will check; it raises ModelRejected for anything the trainer got wrong.
"""

from __future__ import annotations

# zipfile decodes the member names of a skops file with cp437 unless they are flagged UTF-8,
# importing the codec on first use. Import it here, before fork: a confined child under its
# own uid may not be able to read the standard library's directory (e.g. under /root).
import encodings.cp437  # noqa: F401
import sys
from typing import Any

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

from wekacoin.evaluation import onnx_model, skops_model
from wekacoin.evaluation.formats import ModelFormat
from wekacoin.types.metric import TaskKind


def warm_up() -> None:
    """Run one tiny classifier so onnxruntime's environment and kernels exist before fork.

    Each spare child runs it again while it waits: a fresh child with no warm-up spent ~30 %
    more CPU on the benchmark's inferences than the long-lived process; after it, the same.
    (Tiny models of every skl2onnx family were tried as well: no further gain.)"""
    ort.disable_telemetry_events()  # it would try to persist an id on a read-only filesystem
    node = helper.make_node(
        "LinearClassifier",
        ["X"],
        ["label", "scores"],
        domain="ai.onnx.ml",
        coefficients=[1.0, -1.0],
        intercepts=[0.0, 0.0],
        classlabels_ints=[0, 1],
    )
    zipmap = helper.make_node(
        "ZipMap", ["scores"], ["proba"], domain="ai.onnx.ml", classlabels_int64s=[0, 1]
    )
    graph = helper.make_graph(
        [node, zipmap],
        "warm_up",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 1])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_value_info(
                "proba",
                helper.make_sequence_type_proto(
                    helper.make_map_type_proto(
                        TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, [])
                    )
                ),
            ),
        ],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
        ir_version=8,
    )
    predictor = onnx_model.load(model.SerializeToString())
    predictor.predict(np.zeros((2, 1)), TaskKind.CLASSIFICATION, want_proba=True)


def prepare_key(args: dict[str, Any]) -> str | None:
    """What `prepare(args)` would import that the fork server has not (None: nothing). Spare
    processes prepare for nothing; a job that needs more gets a process of its own."""
    if args.get("format") == ModelFormat.SKOPS.value and "skops.io" not in sys.modules:
        return "skops"
    return None


def prepare(args: dict[str, Any]) -> None:
    if args.get("format") == ModelFormat.SKOPS.value:
        import skops.io  # noqa: F401  (trusted import, before confinement)


def run(args: dict[str, Any], blob: bytes, datasets: list[np.ndarray]) -> list[np.ndarray]:
    kind = TaskKind(args["kind"])
    want_proba = bool(args["want_proba"])
    if ModelFormat(args["format"]) is ModelFormat.ONNX:
        predictor: onnx_model.OnnxPredictor | skops_model.SkopsPredictor = onnx_model.load(
            blob, max_work=int(args["max_work"]) if "max_work" in args else None
        )
    else:
        predictor = skops_model.load(blob, int(args["max_unpacked_bytes"]))
    arrays: list[np.ndarray] = []
    for features in datasets:
        arrays += predictor.predict(features, kind, want_proba)
    return arrays
