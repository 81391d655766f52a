"""ONNX models: the operator allow-list, the work bound, the session, and the output contract.

Runs inside the sandbox. The model is parsed with `onnx`, checked (allow-list, contract,
`onnx_work`'s bound on its work for the dataset's shape), re-serialised, and only those
checked bytes reach onnxruntime. Every problem found is listed at once, each with its fix
(`find_problems`); `wekacoin model check` shows the same list in full. The contract, for
trainers in docs/models.md:
- one tensor input of float or double, shape (rows, n_features), the first axis dynamic;
- regression: output 0 is the predicted values, shape (rows,) or (rows, 1);
- classification: output 0 is the integer labels, shape (rows,) or (rows, 1); output 1, read
  only by probability metrics, is either a sequence of maps {class label: probability}
  (skl2onnx's default ZipMap, whose integer labels then name the columns) or a (rows, k)
  tensor whose column j is class label j.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from wekacoin.evaluation.formats import ModelRejected
from wekacoin.evaluation.onnx_work import WorkUnknown, compute_work, infer_values, work_limit
from wekacoin.types.genesis import Params
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
        # what torch.onnx.export emits for MLPs and CNNs (both exporters)
        "AveragePool", "BatchNormalization", "Constant", "Conv", "Dropout", "Elu", "Gather",
        "Gelu", "GlobalAveragePool", "GlobalMaxPool", "HardSigmoid", "HardSwish",
        "LayerNormalization", "MaxPool", "Mish", "PRelu", "Selu", "Shape", "Slice", "Softsign",
        "Split",
    )]
    + [("ai.onnx.ml", op) for op in (
        "ArrayFeatureExtractor", "Binarizer", "FeatureVectorizer", "Imputer", "LinearClassifier",
        "LinearRegressor", "Normalizer", "Scaler", "SVMClassifier", "SVMRegressor",
        "TreeEnsemble", "TreeEnsembleClassifier", "TreeEnsembleRegressor", "ZipMap",
    )]
)
# fmt: on
"""What skl2onnx emits for linear, tree, SVM, naive Bayes and MLP models and their scalers,
onnxmltools for LightGBM and XGBoost, and torch.onnx.export for MLPs and CNNs. Left out on
purpose: control flow with subgraphs (Loop, If, Scan), ops that size their output from data
(ConstantOfShape, Expand, Tile, Range, NonZero, TopK), and every custom domain. Shapes that
follow from data anyway (Reshape or Slice fed by computed values) have no static bound
(`onnx_work`) and are refused there."""

MAX_NODES = 200_000
DEFAULT_MAX_WORK = work_limit(Params().max_eval_time_ms)
"""The bound when the caller gives none: the longest evaluation time a task may ask."""
MODELS_DOC = "see docs/models.md"

_CONTROL_FLOW = frozenset({"Loop", "If", "Scan"})
_DATA_SIZED = frozenset({
    "ConstantOfShape", "Expand", "Tile", "Range", "NonZero", "TopK", "OneHot", "Resize", "Pad",
    "Compress", "Unique", "StringSplit",
})
_FLOATS = (TensorProto.FLOAT, TensorProto.DOUBLE)
_INTEGERS = frozenset({
    TensorProto.INT8, TensorProto.INT16, TensorProto.INT32, TensorProto.INT64,
    TensorProto.UINT8, TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64,
})


def parse(model_bytes: bytes) -> onnx.ModelProto:
    try:
        return onnx.load_model_from_string(model_bytes)
    except Exception as e:  # the protobuf parser raises its own DecodeError types
        raise ModelRejected(
            f"not a valid ONNX model ({type(e).__name__}): save it with onnx.save or "
            "torch.onnx.export into one file"
        ) from e


def check_model(model: onnx.ModelProto) -> None:
    """Refuse anything outside the allow-list, before onnxruntime sees the model."""
    problems = find_problems(model)
    if problems:
        raise ModelRejected(*problems)


def find_problems(model: onnx.ModelProto) -> list[str]:
    """Every way the graph breaks the allow-list, each with what to do about it."""
    problems = []
    if model.functions:
        problems.append("model-local functions are not allowed: export them inlined")
    for opset in model.opset_import:
        if _domain(opset.domain) not in ("", "ai.onnx.ml"):
            problems.append(f"operator set domain {opset.domain!r} is not allowed: export with "
                            "the standard ai.onnx and ai.onnx.ml operators only")
    graph = model.graph
    if len(graph.node) > MAX_NODES:
        problems.append(f"{len(graph.node)} nodes exceed the limit of {MAX_NODES}: use a "
                        "smaller model")
    if graph.sparse_initializer:
        problems.append("sparse initializers are not allowed: store the weights dense")
    external = [t.name for t in graph.initializer if _is_external(t)]
    refused: Counter[tuple[str, str]] = Counter()
    graph_attrs: set[str] = set()
    for node in graph.node:
        if (_domain(node.domain), node.op_type) not in ALLOWED_OPS:
            refused[(node.domain or "ai.onnx", node.op_type)] += 1
        elif node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
            refused[("ai.onnx", "Dropout in training mode")] += 1
        for attr in node.attribute:
            if attr.g.ByteSize() or attr.graphs or attr.sparse_tensor.ByteSize():
                graph_attrs.add(node.op_type)
            if attr.t.ByteSize() and _is_external(attr.t):
                external.append(f"{node.op_type}.{attr.name}")
            external += [f"{node.op_type}.{attr.name}" for t in attr.tensors if _is_external(t)]
    for (domain, op), count in sorted(refused.items()):
        nodes = f" ({count} nodes)" if count > 1 else ""
        problems.append(f"operator {domain}::{op} is not allowed{nodes}: {_fix_for(domain, op)}")
    if graph_attrs:
        ops = ", ".join(sorted(graph_attrs))
        problems.append(f"graph or sparse attributes are not allowed ({ops}): export without "
                        "subgraphs")
    if external:
        names = ", ".join(external[:3]) + (f" and {len(external) - 3} more" if len(external) > 3
                                           else "")
        problems.append(f"external data: tensors {names} refer to a file beside the model: "
                        "export with external_data=False (torch.onnx.export) or "
                        "onnx.save(model, path, save_as_external_data=False)")
    return problems


def _fix_for(domain: str, op: str) -> str:
    if op == "Dropout in training mode":
        return "call model.eval() before torch.onnx.export"
    if _domain(domain) not in ("", "ai.onnx.ml"):
        return "custom operators cannot run here; export with the standard operators only"
    if op in _CONTROL_FLOW:
        return ("loops and branches are not allowed (scikit-learn's k-neighbours models "
                "convert with Scan); use another model or unroll it")
    if op in _DATA_SIZED:
        return "an output sized by data values is not allowed; use fixed shapes"
    return "the allowed operators are listed in docs/models.md"


def _domain(domain: str) -> str:
    return "" if domain == "ai.onnx" else domain


def _is_external(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL or bool(tensor.external_data)


def find_contract_problems(
    model: onnx.ModelProto, kind: TaskKind, want_proba: bool, rows: int, n_features: int,
    max_work: int,
) -> tuple[list[str], int | None]:
    """The output contract and the work bound on a dataset of this shape: the problems (each
    with its fix) and the graph's work (None when it has no static bound)."""
    graph = model.graph
    initialized = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initialized]
    problems = _input_problems(inputs, n_features)
    values = infer_values(model, rows, n_features)
    problems += _output_problems(graph, values, kind, want_proba, rows)
    work = None
    try:
        work = compute_work(model, rows, n_features)
    except WorkUnknown as e:
        allowed = [n for n in e.nodes if ("", n.split()[0]) in ALLOWED_OPS
                   or ("ai.onnx.ml", n.split()[0]) in ALLOWED_OPS]
        if allowed:
            first = ", ".join(allowed[:3]) + (" ..." if len(allowed) > 3 else "")
            problems.append(
                f"no static bound on the work of {len(allowed)} nodes ({first}): their output "
                "shapes must follow from the input shape alone; reshape with constant shapes "
                "and keep only the first axis dynamic"
            )
    if work is not None and work > max_work:
        problems.append(
            f"work bound: the graph asks for {work:,} units on {rows} rows, over the task's "
            f"limit of {max_work:,} (docs/models.md says how it is counted): use a smaller "
            "model (fewer or narrower layers, fewer or shallower trees)"
        )
    return problems, work


def _input_problems(inputs: list[onnx.ValueInfoProto], n_features: int) -> list[str]:
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs[:4])
        return [f"the model must have one input (the feature matrix), it has {len(inputs)}"
                f"{': ' + names if names else ''}; {MODELS_DOC}"]
    x = inputs[0]
    if not x.type.HasField("tensor_type"):
        return [f"input {x.name!r} must be a float tensor (rows, {n_features})"]
    tensor_type, problems = x.type.tensor_type, []
    if tensor_type.elem_type not in _FLOATS:
        name = TensorProto.DataType.Name(tensor_type.elem_type).lower()
        problems.append(f"input {x.name!r} is {name}: declare it float32 "
                        "(FloatTensorType, torch.float32) or double")
    if tensor_type.HasField("shape"):
        dims = tensor_type.shape.dim
        shown = "(" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else
                                (d.dim_param or "?") for d in dims) + ")"
        if len(dims) != 2:
            problems.append(f"input {x.name!r} has shape {shown}: take (rows, {n_features}) "
                            "and reshape inside the model (x.view(-1, C, H, W))")
        else:
            if dims[0].HasField("dim_value"):
                problems.append(f"input {x.name!r} has a fixed first axis of {dims[0].dim_value}"
                                ": export with a dynamic batch axis (dynamic_axes or "
                                f"dynamic_shapes, {MODELS_DOC})")
            if dims[1].HasField("dim_value") and dims[1].dim_value != n_features:
                problems.append(f"input {x.name!r} takes {dims[1].dim_value} features, the "
                                f"task has {n_features} feature columns: train on exactly "
                                "those, in their order")
    return problems


def _output_problems(graph: onnx.GraphProto, values: dict, kind: TaskKind, want_proba: bool,
                     rows: int) -> list[str]:
    outputs = list(graph.output)
    if not outputs:
        return [f"the model has no outputs; {MODELS_DOC}"]
    first = values.get(outputs[0].name)
    shape = None if first is None else first.shape
    elem = outputs[0].type.tensor_type.elem_type if outputs[0].type.HasField("tensor_type") \
        else 0
    elem = (first.elem_type if first is not None and first.elem_type else elem)
    one_per_row = shape in ((rows,), (rows, 1))
    problems = []
    if kind is TaskKind.REGRESSION:
        if elem and elem not in _FLOATS:
            problems.append(f"output 0 ({outputs[0].name!r}) must be float values, is "
                            f"{TensorProto.DataType.Name(elem).lower()}")
        if shape is not None and not one_per_row:
            problems.append(f"output 0 ({outputs[0].name!r}) has shape {shape}: regression "
                            f"wants one value per row, ({rows},) or ({rows}, 1)")
        return problems
    if elem in _FLOATS and shape is not None and len(shape) == 2 and shape[1] > 1:
        problems.append(f"logits only: output 0 ({outputs[0].name!r}) is a float {shape} "
                        "tensor; add an ArgMax output (the labels, first) and a Softmax output "
                        f"(the probabilities, second), {MODELS_DOC}")
    elif elem in _FLOATS:
        problems.append(f"output 0 ({outputs[0].name!r}) holds floats: the labels must be "
                        "integers (ArgMax, or Cast to int64)")
    elif elem == TensorProto.STRING:
        problems.append(f"output 0 ({outputs[0].name!r}) holds strings: train on the task's "
                        "integer labels (task show lists the class names)")
    elif shape is not None and not one_per_row:
        problems.append(f"output 0 ({outputs[0].name!r}) has shape {shape}: the labels are "
                        f"one integer per row, ({rows},) or ({rows}, 1)")
    if want_proba:
        if len(outputs) < 2:
            problems.append("this task's metric needs probabilities: add a second output, a "
                            f"float (rows, classes) tensor (Softmax), {MODELS_DOC}")
        else:
            second = values.get(outputs[1].name)
            if second is not None and second.shape is not None and (
                len(second.shape) != 2 or second.shape[0] != rows
            ):
                problems.append(f"output 1 ({outputs[1].name!r}) has shape {second.shape}: "
                                f"the probabilities are a ({rows}, classes) tensor")
    return problems


def load(model_bytes: bytes, *, max_work: int | None = None) -> OnnxPredictor:
    """Parse the model; it is checked on its first `predict`, once the data's shape is known.
    `max_work`: the task's bound (`onnx_work.work_limit` of its evaluation time)."""
    return OnnxPredictor(parse(model_bytes), DEFAULT_MAX_WORK if max_work is None else max_work)


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
    """A parsed model. Its first `predict` checks it against the data's shape (every problem
    at once) and only then opens the onnxruntime session; each dataset's work is bounded."""

    def __init__(self, model: onnx.ModelProto, max_work: int = DEFAULT_MAX_WORK) -> None:
        self._model = model
        self._max_work = max_work
        self._session: ort.InferenceSession | None = None
        self._classes: np.ndarray | None = None  # labels of the probability columns, if known
        self._checked_static = False

    def check(self, kind: TaskKind, want_proba: bool, rows: int, n_features: int) -> None:
        """Raise ModelRejected with every problem the model has on data of this shape."""
        problems = [] if self._checked_static else find_problems(self._model)
        more, _ = find_contract_problems(
            self._model, kind, want_proba, rows, n_features, self._max_work
        )
        if problems or more:
            raise ModelRejected(*problems, *more)
        self._checked_static = True

    def _open(self) -> ort.InferenceSession:
        if self._session is None:
            checked = onnx.ModelProto()
            checked.CopyFrom(self._model)
            self._classes = _bypass_zipmap(checked)
            session = _session(checked.SerializeToString())
            inputs = session.get_inputs()
            if len(inputs) != 1 or inputs[0].type not in ("tensor(float)", "tensor(double)"):
                raise ModelRejected("the model must have one float or double tensor input")
            self._session = session
        return self._session

    def predict(self, features: np.ndarray, kind: TaskKind, want_proba: bool) -> list[np.ndarray]:
        """[values] for regression; [labels] or [labels, probabilities, classes]."""
        n = features.shape[0]
        self.check(kind, want_proba, n, features.shape[1])
        session = self._open()
        x = session.get_inputs()[0]
        dtype = np.float32 if x.type == "tensor(float)" else np.float64
        names = [o.name for o in session.get_outputs()]
        wanted = names[: 2 if want_proba else 1]
        if len(wanted) < (2 if want_proba else 1):
            raise ModelRejected("model has too few outputs")
        try:
            outputs = session.run(wanted, {x.name: features.astype(dtype)})
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
        hint = ""
        if name == "labels" and a is not None and a.ndim == 2 and a.dtype.kind == "f":
            hint = ("; logits only? add an ArgMax output (the labels, first) and a Softmax "
                    f"output (the probabilities, second), {MODELS_DOC}")
        raise ModelRejected(f"{name} output must have shape ({n},) or ({n}, 1), got {shape}"
                            + hint)
    if kind is int:
        if not np.issubdtype(a.dtype, np.integer):
            raise ModelRejected(f"labels must be integers, got {a.dtype}: add an ArgMax output "
                                f"first, {MODELS_DOC}")
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
