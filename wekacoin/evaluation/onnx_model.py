"""ONNX models: the operator allow-list, the session, and what the outputs must look like.

Runs inside the sandbox. The model is parsed with `onnx`, checked node by node, re-serialised,
and only those checked bytes reach onnxruntime.

Contract for a model (what skl2onnx emits for scikit-learn estimators):
- one tensor input of float or double, shape (rows, n_features);
- regression: output 0 is the predicted values, shape (rows,) or (rows, 1);
- classification: output 0 is the integer labels, shape (rows,) or (rows, 1); output 1, read
  only by probability metrics, is either a sequence of maps {class label: probability}
  (skl2onnx's default ZipMap, whose integer labels then name the columns) or a (rows, k)
  tensor whose column j is class label j.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from wekacoin.evaluation.formats import ModelRejected
from wekacoin.types.metric import TaskKind

# fmt: off
ALLOWED_OPS: frozenset[tuple[str, str]] = frozenset(
    [("", op) for op in (
        "Abs", "Add", "ArgMax", "ArgMin", "Cast", "Ceil", "Clip", "Concat", "Div", "Equal",
        "Erf", "Exp", "Flatten", "Floor", "Gemm", "Greater", "GreaterOrEqual", "Identity",
        "LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax", "MatMul", "Max", "Mean", "Min",
        "Mul", "Neg", "Not", "Pow", "Reciprocal", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
        "ReduceMin", "ReduceSum", "Relu", "Reshape", "Round", "Sigmoid", "Sign", "Softmax",
        "Softplus", "Sqrt", "Squeeze", "Sub", "Sum", "Tanh", "Transpose", "Unsqueeze", "Where",
    )]
    + [("ai.onnx.ml", op) for op in (
        "ArrayFeatureExtractor", "Binarizer", "FeatureVectorizer", "Imputer", "LinearClassifier",
        "LinearRegressor", "Normalizer", "Scaler", "SVMClassifier", "SVMRegressor",
        "TreeEnsemble", "TreeEnsembleClassifier", "TreeEnsembleRegressor", "ZipMap",
    )]
)
# fmt: on
"""What skl2onnx emits for linear, tree, SVM, naive Bayes and MLP models and their scalers.
Left out on purpose: control flow with subgraphs (Loop, If, Scan), ops that size their output
from data (ConstantOfShape, Expand, Tile, Range), and every custom domain."""

MAX_NODES = 200_000


def check_model(model: onnx.ModelProto) -> None:
    """Refuse anything outside the allow-list, before onnxruntime sees the model."""
    if model.functions:
        raise ModelRejected("model-local functions are not allowed")
    for opset in model.opset_import:
        if _domain(opset.domain) not in ("", "ai.onnx.ml"):
            raise ModelRejected(f"operator set domain {opset.domain!r} is not allowed")
    graph = model.graph
    if len(graph.node) > MAX_NODES:
        raise ModelRejected(f"{len(graph.node)} nodes exceed the limit of {MAX_NODES}")
    if graph.sparse_initializer:
        raise ModelRejected("sparse initializers are not allowed")
    for tensor in graph.initializer:
        _check_tensor(tensor)
    for node in graph.node:
        if (_domain(node.domain), node.op_type) not in ALLOWED_OPS:
            raise ModelRejected(
                f"operator {node.domain or 'ai.onnx'}::{node.op_type} is not allowed"
            )
        for attr in node.attribute:
            if attr.g.ByteSize() or attr.graphs or attr.sparse_tensor.ByteSize():
                raise ModelRejected(f"node {node.op_type}: graph or sparse attributes not allowed")
            if attr.t.ByteSize():
                _check_tensor(attr.t)
            for t in attr.tensors:
                _check_tensor(t)


def _domain(domain: str) -> str:
    return "" if domain == "ai.onnx" else domain


def _check_tensor(tensor: onnx.TensorProto) -> None:
    if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
        raise ModelRejected(f"tensor {tensor.name!r} refers to external data")


def load(model_bytes: bytes) -> OnnxPredictor:
    try:
        model = onnx.load_model_from_string(model_bytes)
    except Exception as e:  # the protobuf parser raises its own DecodeError types
        raise ModelRejected(f"not a valid ONNX model: {type(e).__name__}") from e
    check_model(model)
    classes = _bypass_zipmap(model)
    return OnnxPredictor(_session(model.SerializeToString()), classes)


def _bypass_zipmap(model: onnx.ModelProto) -> np.ndarray | None:
    """When output 1 is a ZipMap of a probability tensor, make that tensor the output instead.

    The numbers are the same (ZipMap only repackages them), but onnxruntime no longer builds
    one Python dict per row, which cost more than the inference itself for linear models.
    Returns the ZipMap's class labels, or None when the graph is left as it is.
    """
    graph = model.graph
    if len(graph.output) < 2:
        return None
    name = graph.output[1].name
    producers = [node for node in graph.node if name in node.output]
    if len(producers) != 1 or any(name in node.input for node in graph.node):
        return None
    zipmap = producers[0]
    if zipmap.op_type != "ZipMap" or zipmap.domain != "ai.onnx.ml":
        return None
    labels = [list(a.ints) for a in zipmap.attribute if a.name == "classlabels_int64s"]
    if not labels or not labels[0]:
        return None  # string labels: left to fail the integer-label check
    graph.node.remove(zipmap)
    graph.output[1].CopyFrom(
        helper.make_tensor_value_info(zipmap.input[0], onnx.TensorProto.FLOAT, None)
    )
    return np.array(labels[0], dtype=np.int64)


def _session(checked: bytes) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1  # bit-identical results need one thread (NOTES.md)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Basic rewrites only: the extended fusions are hardware-specific.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.use_deterministic_compute = True
    so.log_severity_level = 3
    so.add_session_config_entry("session.load_model_format", "ONNX")
    try:
        return ort.InferenceSession(checked, so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime reports invalid graphs with its own exception types
        raise ModelRejected(f"onnxruntime refused the model: {_short(e)}") from e


class OnnxPredictor:
    def __init__(self, session: ort.InferenceSession, classes: np.ndarray | None = None) -> None:
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ModelRejected(f"model must have one input, has {len(inputs)}")
        kind = inputs[0].type
        if kind not in ("tensor(float)", "tensor(double)"):
            raise ModelRejected(f"model input must be a float or double tensor, is {kind}")
        self._session = session
        self._input = inputs[0].name
        self._dtype = np.float32 if kind == "tensor(float)" else np.float64
        self._outputs = [o.name for o in session.get_outputs()]
        self._classes = classes  # labels of the probability columns, when the graph says

    def predict(self, features: np.ndarray, kind: TaskKind, want_proba: bool) -> list[np.ndarray]:
        """[values] for regression; [labels] or [labels, probabilities, classes]."""
        n = features.shape[0]
        wanted = self._outputs[: 2 if want_proba else 1]
        if len(wanted) < (2 if want_proba else 1):
            raise ModelRejected("model has too few outputs")
        try:
            outputs = self._session.run(wanted, {self._input: features.astype(self._dtype)})
        except Exception as e:  # onnxruntime raises its own types, including out-of-memory
            if "failed to allocate" in str(e).lower() or "bad_alloc" in str(e):
                raise MemoryError("onnxruntime could not allocate memory") from e
            raise ModelRejected(f"inference failed: {_short(e)}") from e
        if kind is TaskKind.REGRESSION:
            return [_vector(outputs[0], n, "values", float)]
        labels = _vector(outputs[0], n, "labels", int)
        if not want_proba:
            return [labels]
        return [labels, *_probabilities(outputs[1], n, self._classes)]


def _vector(out: object, n: int, name: str, kind: type) -> np.ndarray:
    a = np.asarray(out) if isinstance(out, np.ndarray) else None
    if a is None or a.shape not in ((n,), (n, 1)):
        shape = getattr(a, "shape", type(out).__name__)
        raise ModelRejected(f"{name} output must have shape ({n},) or ({n}, 1), got {shape}")
    if kind is int:
        if not np.issubdtype(a.dtype, np.integer):
            raise ModelRejected(f"labels must be integers, got {a.dtype}")
        return a.reshape(n).astype(np.int64)
    if not np.issubdtype(a.dtype, np.floating):
        raise ModelRejected(f"values must be floating point, got {a.dtype}")
    return a.reshape(n).astype(np.float64)


def _probabilities(out: object, n: int, classes: np.ndarray | None) -> list[np.ndarray]:
    if isinstance(out, np.ndarray):
        if out.ndim != 2 or out.shape[0] != n or not np.issubdtype(out.dtype, np.floating):
            raise ModelRejected(f"probabilities must be a float ({n}, k) tensor")
        if classes is None:
            return [out.astype(np.float64), np.arange(out.shape[1], dtype=np.int64)]
        if len(classes) != out.shape[1]:
            raise ModelRejected("ZipMap labels do not match the probability columns")
        order = np.argsort(classes, kind="stable")
        return [out[:, order].astype(np.float64), classes[order]]
    if not isinstance(out, list) or len(out) != n or not all(isinstance(r, dict) for r in out):
        raise ModelRejected("probabilities must be a tensor or one map per row")
    keys = sorted(out[0]) if out else []
    if not keys or not all(type(k) is int for k in keys):
        raise ModelRejected("probability maps must have integer class labels")
    if any(len(row) != len(keys) for row in out):
        raise ModelRejected("probability maps differ in their classes")
    try:
        matrix = np.array([[row[k] for k in keys] for row in out], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelRejected("probability maps differ in their classes") from e
    return [matrix, np.array(keys, dtype=np.int64)]


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__
