"""Builders for the hostile-model corpus: every file is made here, none is committed."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

OPSETS = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]


def _regression_graph(nodes: list, n_features: int, initializers: list = ()) -> bytes:
    """A model with one float input (rows, n_features) and whatever output "Y" the nodes make."""
    graph = helper.make_graph(
        nodes,
        "hostile",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=list(initializers),
    )
    return helper.make_model(graph, opset_imports=OPSETS, ir_version=8).SerializeToString()


def _axes(name: str, values: list[int]):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def pickle_file(estimator: object) -> bytes:
    return pickle.dumps(estimator)  # built to be refused, never loaded


def joblib_file(estimator: object) -> bytes:
    import joblib

    out = io.BytesIO()
    joblib.dump(estimator, out, compress=3)
    return out.getvalue()


def skops_naming(valid_skops: bytes, module: str, name: str) -> bytes:
    """A valid skops file whose schema also asks for `module.name` (say os.system)."""
    source = zipfile.ZipFile(io.BytesIO(valid_skops))
    schema = json.loads(source.read("schema.json"))
    schema["content"]["content"]["payload"] = {
        "__class__": name,
        "__module__": module,
        "__loader__": "FunctionNode",
        "content": {"module_path": module, "function": name},
        "__id__": 1,
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = (
                json.dumps(schema).encode() if item.filename == "schema.json" else source.read(item)
            )
            target.writestr(item.filename, data)
    return out.getvalue()


def zip_bomb(valid_skops: bytes, unpacked_bytes: int) -> bytes:
    """A valid skops zip plus one member that inflates to `unpacked_bytes` of zeros."""
    out = io.BytesIO(valid_skops)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("bomb.npy", "w", force_zip64=True) as member:
            chunk = bytes(1 << 20)
            for _ in range(unpacked_bytes >> 20):
                member.write(chunk)
    return out.getvalue()


def disallowed_operator(n_features: int) -> bytes:
    """ConstantOfShape makes a tensor of any size it is told: not on the allow-list."""
    return _regression_graph(
        [
            helper.make_node("ConstantOfShape", ["shape"], ["c"]),
            helper.make_node("ReduceSum", ["c", "axes"], ["Y"], keepdims=0),
        ],
        n_features,
        [_axes("shape", [10**6, 10**6]), _axes("axes", [1])],
    )


def wrong_output_shape(n_features: int) -> bytes:
    """Returns the whole input as "predictions": (rows, n_features), not (rows,)."""
    return _regression_graph([helper.make_node("Identity", ["X"], ["Y"])], n_features)


def nan_output(n_features: int) -> bytes:
    """sqrt(-(|x| + 1)) is NaN for every row."""
    one = numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one")
    return _regression_graph(
        [
            helper.make_node("Abs", ["X"], ["a"]),
            helper.make_node("Add", ["a", "one"], ["b"]),
            helper.make_node("Neg", ["b"], ["c"]),
            helper.make_node("Sqrt", ["c"], ["d"]),
            helper.make_node("ReduceSum", ["d", "axes"], ["Y"], keepdims=0),
        ],
        n_features,
        [one, _axes("axes", [1])],
    )


def memory_hog(n_features: int, doublings: int = 40) -> bytes:
    """Concat doubles the width at every step: 2**40 times the input, far past any limit."""
    nodes, last = [], "X"
    for i in range(doublings):
        nodes.append(helper.make_node("Concat", [last, last], [f"c{i}"], axis=1))
        last = f"c{i}"
    nodes.append(helper.make_node("ReduceSum", [last, "axes"], ["Y"], keepdims=0))
    return _regression_graph(nodes, n_features, [_axes("axes", [1])])


def time_hog(n_features: int, width: int = 1024, steps: int = 2000) -> bytes:
    """A long chain of (rows x width) @ (width x width) products: minutes of single-thread work."""
    rng = np.random.default_rng(0)
    w_in = numpy_helper.from_array(rng.normal(size=(n_features, width)).astype(np.float32), "w_in")
    w = numpy_helper.from_array((rng.normal(size=(width, width)) / width).astype(np.float32), "w")
    nodes, last = [helper.make_node("MatMul", ["X", "w_in"], ["h0"])], "h0"
    for i in range(1, steps):
        nodes.append(helper.make_node("MatMul", [last, "w"], [f"h{i}"]))
        last = f"h{i}"
    nodes.append(helper.make_node("ReduceSum", [last, "axes"], ["Y"], keepdims=0))
    return _regression_graph(nodes, n_features, [w_in, w, _axes("axes", [1])])


def external_data(n_features: int) -> bytes:
    """An initializer whose bytes live in a file next to the model: must never be opened."""
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[n_features])
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "/etc/shadow"
    return _regression_graph(
        [
            helper.make_node("Mul", ["X", "w"], ["m"]),
            helper.make_node("ReduceSum", ["m", "axes"], ["Y"], keepdims=0),
        ],
        n_features,
        [tensor, _axes("axes", [1])],
    )
