"""A bound on the work an ONNX graph asks for, computed from the graph and the input shape alone.

Runs inside the sandbox, on a graph that passed the allow-list, before onnxruntime sees it.
Every node computes the same integer from the same bytes, so a model over the bound is
INVALID everywhere, instead of timing out (UNEVALUATED) on slow nodes and scoring on fast
ones. The unit is about one multiply-add or one element written:

    work = sum over nodes of (NODE_UNITS + cost(node))
    cost = output elements x factor, where the factor is
           K (the reduced axis) for MatMul and Gemm; C_in / group x kernel elements for Conv;
           kernel elements for MaxPool and AveragePool; TRANSCENDENTAL for exp-like ops; 1 else;
           input elements x factor for reductions, normalisations and softmax;
           rows x (sum of tree depths) for tree ensembles, rows x coefficients for linear and
           SVM models (their attributes say how many)

The shapes are onnx's shape inference (with constant propagation) on the graph with its
input bound to (rows, n_features); for the `ai.onnx.ml` operators, which onnx does not
infer, from their attributes (`_ml_output_shapes`). A node whose output shape stays unknown
has no bound: the model is refused. The limit is `work_limit(task's eval_time_ms)`, integers
only, so no node's hardware or node.toml takes part in the decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import onnx
from onnx import TensorProto, helper

WORK_UNITS_PER_MS = 1_000_000
"""One unit per nanosecond of the task's evaluation time: one core does several multiply-adds
per nanosecond, so a model at the bound still leaves most of its time to a slow node."""
NODE_UNITS = 10_000
"""What running any node costs, however small its tensors (kernel dispatch, allocation)."""
TRANSCENDENTAL = 8
MAX_INFERENCE_PASSES = 16

_TRANSCENDENTAL_OPS = frozenset({
    "Erf", "Exp", "Gelu", "HardSwish", "Log", "Mish", "Pow", "Reciprocal", "Selu", "Sigmoid",
    "Softplus", "Softsign", "Sqrt", "Tanh", "Elu",
})
# Ops whose work grows with their input rather than their output (reductions and the like).
_BY_INPUT = {
    "ArgMax": 1, "ArgMin": 1, "GlobalAveragePool": 1, "GlobalMaxPool": 1, "ReduceMax": 1,
    "ReduceMean": 1, "ReduceMin": 1, "ReduceSum": 1, "ReduceLogSumExp": TRANSCENDENTAL,
    "Softmax": TRANSCENDENTAL, "LogSoftmax": TRANSCENDENTAL, "BatchNormalization": 4,
    "LayerNormalization": 8, "ZipMap": 16,
}
_FREE = frozenset({"Shape", "Constant", "Identity"})  # no element is computed


@dataclass(frozen=True)
class Value:
    """What inference knows of a value: its element type, and its shape if a tensor's."""

    elem_type: int  # TensorProto.* for tensors, 0 for sequences and maps
    shape: tuple[int, ...] | None  # None: unknown, or not a tensor

    @property
    def elements(self) -> int | None:
        if self.shape is None:
            return None
        n = 1
        for d in self.shape:
            n *= d
        return n


class WorkUnknown(Exception):
    """Some nodes have no static bound: their output shapes are not known from the graph."""

    def __init__(self, nodes: Sequence[str]) -> None:
        super().__init__(", ".join(nodes))
        self.nodes = tuple(nodes)


def work_limit(eval_time_ms: int) -> int:
    """The most work a task allows per dataset, from its evaluation time (genesis-bounded)."""
    return eval_time_ms * WORK_UNITS_PER_MS


def compute_work(model: onnx.ModelProto, rows: int, n_features: int) -> int:
    """The graph's work on `rows` rows; raises WorkUnknown naming the nodes without a bound."""
    values = infer_values(model, rows, n_features)
    total, unknown = 0, []
    for i, node in enumerate(model.graph.node):
        cost = node_work(node, values, rows)
        if cost is None:
            unknown.append(f"{node.op_type} {node.name or f'#{i}'}")
        else:
            total += NODE_UNITS + cost
    if unknown:
        raise WorkUnknown(unknown)
    return total


def infer_values(model: onnx.ModelProto, rows: int, n_features: int) -> dict[str, Value]:
    """Every value's type and shape with the input bound to (rows, n_features). Shapes the
    model declares itself (value_info, outputs) are dropped first: only inference counts."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    graph = m.graph
    del graph.value_info[:]
    for output in graph.output:
        if output.type.HasField("tensor_type"):
            output.type.tensor_type.ClearField("shape")
    if graph.input and graph.input[0].type.HasField("tensor_type"):
        tensor_type = graph.input[0].type.tensor_type
        tensor_type.ClearField("shape")
        for d in (rows, n_features):
            tensor_type.shape.dim.add().dim_value = d
    values: dict[str, Value] = {t.name: Value(t.data_type, tuple(t.dims))
                                for t in graph.initializer}
    for _ in range(MAX_INFERENCE_PASSES):
        try:
            inferred = onnx.shape_inference.infer_shapes(m, strict_mode=False, data_prop=True)
        except Exception:  # onnx raises its own inference errors: nothing more is known
            break
        g = inferred.graph
        for info in (*g.input, *g.value_info, *g.output):
            values[info.name] = _value(info.type)
        added = _add_ml_shapes(graph, values)
        if not added:
            break
    return values


def _value(t: onnx.TypeProto) -> Value:
    if not t.HasField("tensor_type"):
        return Value(0, None)
    tt = t.tensor_type
    if not tt.HasField("shape"):
        return Value(tt.elem_type, None)
    dims = []
    for d in tt.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return Value(tt.elem_type, None)
        dims.append(d.dim_value)
    return Value(tt.elem_type, tuple(dims))


def _known(values: dict[str, Value], name: str) -> tuple[int, ...] | None:
    value = values.get(name)
    return None if value is None else value.shape


def _add_ml_shapes(graph: onnx.GraphProto, values: dict[str, Value]) -> bool:
    """Declare the outputs of `ai.onnx.ml` nodes that inference left unknown; True if any."""
    added = False
    for node in graph.node:
        if node.domain != "ai.onnx.ml" or all(_known(values, o) is not None
                                              for o in node.output if o):
            continue
        shapes = _ml_output_shapes(node, values)
        if shapes is None:
            continue
        for name, (elem_type, shape) in zip(node.output, shapes, strict=False):
            if name and _known(values, name) is None and elem_type:
                graph.value_info.append(helper.make_tensor_value_info(name, elem_type, shape))
                values[name] = Value(elem_type, shape)
                added = True
    return added


def _ml_output_shapes(
    node: onnx.NodeProto, values: dict[str, Value]
) -> list[tuple[int, tuple[int, ...]]] | None:
    """(element type, shape) of each output of an `ai.onnx.ml` node, from its attributes."""
    x = _known(values, node.input[0]) if node.input else None
    if x is None:
        return None
    n = x[0] if len(x) == 2 else 1
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    op = node.op_type
    if op in ("TreeEnsembleClassifier", "LinearClassifier", "SVMClassifier"):
        labels = attrs.get("classlabels_int64s") or attrs.get("classlabels_ints")
        strings = attrs.get("classlabels_strings")
        classes = len(labels or strings or ())
        if op == "SVMClassifier" and not attrs.get("prob_a"):
            classes = max(classes, classes * (classes - 1) // 2)
        label_type = TensorProto.INT64 if labels else TensorProto.STRING
        return [(label_type, (n,)), (TensorProto.FLOAT, (n, max(classes, 1)))]
    if op in ("TreeEnsembleRegressor", "LinearRegressor", "TreeEnsemble"):
        targets = attrs.get("n_targets") or attrs.get("targets") or 1
        return [(TensorProto.FLOAT, (n, int(targets)))]
    if op == "SVMRegressor":
        return [(TensorProto.FLOAT, (n, 1))]
    if op in ("Scaler", "Normalizer", "Imputer", "Binarizer"):
        return [(TensorProto.FLOAT, x)]
    if op == "ArrayFeatureExtractor":
        index = _known(values, node.input[1]) if len(node.input) > 1 else None
        if index is None:
            return None
        width = 1
        for d in index:
            width *= d
        elem = values[node.input[0]].elem_type or TensorProto.FLOAT
        return [(elem, (*x[:-1], width))]
    if op == "FeatureVectorizer":
        return [(TensorProto.FLOAT, (n, sum(int(d) for d in attrs.get("inputdimensions", ()))))]
    return None


def node_work(node: onnx.NodeProto, values: dict[str, Value], rows: int) -> int | None:
    """The node's cost (without NODE_UNITS), or None when its shapes are not known."""
    op = node.op_type
    outputs = [values.get(o) for o in node.output if o]
    inputs = [values.get(i) for i in node.input if i]
    if op == "ZipMap":  # a sequence of maps: counted by its input
        return _elements(inputs[:1], _BY_INPUT[op])
    out = _elements(outputs, 1)
    if out is None:
        return None
    if op in _FREE:
        return 0
    if node.domain == "ai.onnx.ml":
        return out + _ml_work(node, rows)
    if op in _BY_INPUT:
        work_in = _elements(inputs[:1], _BY_INPUT[op])
        return None if work_in is None else max(work_in, out)
    if op in ("MatMul", "Gemm"):
        a = inputs[0].shape if inputs and inputs[0] is not None else None
        if not a:
            return None
        trans_a = any(attr.name == "transA" and attr.i for attr in node.attribute)
        return out * (a[0] if trans_a and len(a) == 2 else a[-1])
    if op == "Conv":
        w = inputs[1].shape if len(inputs) > 1 and inputs[1] is not None else None
        if not w:
            return None
        return out * _product(w[1:])
    if op in ("MaxPool", "AveragePool"):
        kernel = next((list(a.ints) for a in node.attribute if a.name == "kernel_shape"), [])
        return out * _product(kernel)
    return out * (TRANSCENDENTAL if op in _TRANSCENDENTAL_OPS else 1)


def _elements(vals: Iterable[Value | None], factor: int) -> int | None:
    total = 0
    for v in vals:
        n = None if v is None else v.elements
        if n is None:
            return None
        total += n * factor
    return total


def _product(dims: Iterable[int]) -> int:
    n = 1
    for d in dims:
        n *= max(1, int(d))
    return n


def _ml_work(node: onnx.NodeProto, rows: int) -> int:
    """Rows x what one row costs, read from the attributes."""
    attrs = {a.name: a for a in node.attribute}
    op = node.op_type
    if op.startswith("TreeEnsemble"):
        return rows * _sum_of_tree_depths(node)
    if op.startswith("SVM"):
        return rows * (_length(attrs.get("support_vectors")) + _length(attrs.get("coefficients")))
    if op.startswith("Linear"):
        return rows * _length(attrs.get("coefficients"))
    return 0


def _length(attr: onnx.AttributeProto | None) -> int:
    if attr is None:
        return 0
    return len(attr.floats) or len(attr.ints) or len(attr.strings)


def _sum_of_tree_depths(node: onnx.NodeProto) -> int:
    """The nodes each row visits at most: over the trees, the longest root-to-leaf path. A
    forest whose nodes are not a proper set of trees (a child with two parents, a cycle)
    counts every node of it instead."""
    attrs = {a.name: list(a.ints) for a in node.attribute if a.ints}
    trees = attrs.get("nodes_treeids") or attrs.get("tree_roots") or []
    if "nodes_treeids" not in attrs:  # ai.onnx.ml 5 TreeEnsemble: bounded by its splits
        return len(attrs.get("nodes_featureids", [])) + len(trees)
    ids = attrs.get("nodes_nodeids", [])
    true = attrs.get("nodes_truenodeids", [])
    false = attrs.get("nodes_falsenodeids", [])
    if not len(trees) == len(ids) == len(true) == len(false):
        return len(trees)
    modes = next((list(a.strings) for a in node.attribute if a.name == "nodes_modes"), [])
    children: dict[tuple[int, int], tuple[int, int]] = {}
    for k, (tree, nid) in enumerate(zip(trees, ids, strict=True)):
        if k < len(modes) and modes[k] == b"LEAF":
            continue
        children[(tree, nid)] = (true[k], false[k])
    parents: dict[tuple[int, int], int] = {}
    for (tree, _), pair in children.items():
        for child in set(pair):
            parents[(tree, child)] = parents.get((tree, child), 0) + 1
    if any(count > 1 for count in parents.values()):
        return len(trees)
    total = 0
    for tree in set(trees):
        roots = [nid for (t, nid) in children if t == tree and (t, nid) not in parents]
        level, depth, seen = [(tree, r) for r in roots] or [(tree, 0)], 0, 0
        while level and seen <= len(trees):
            depth += 1
            seen += len(level)
            level = [(tree, c) for key in level for c in set(children.get(key, ()))]
        total += depth
    return total
