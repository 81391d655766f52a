"""The model formats: the operator allow-list on real exported models, the work bound, and
refusals that list every problem with its fix (docs/models.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from tests.helpers import hostile_models as hostile
from tests.helpers.evaluation_helpers import shared_sandbox
from wekacoin.evaluation import onnx_model
from wekacoin.evaluation.data import DataSchema, encode_group
from wekacoin.evaluation.evaluate import EvaluationSession, TaskSpec
from wekacoin.evaluation.formats import MAX_REASON_CHARS, ModelRejected, compose_reason
from wekacoin.evaluation.onnx_work import NODE_UNITS, compute_work, work_limit
from wekacoin.evaluation.outcome import Status
from wekacoin.evaluation.sandbox import ForkServerSandbox, Limits
from wekacoin.types.metric import Metric, TaskKind

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
C = TaskKind.CLASSIFICATION


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    return load_digits(return_X_y=True)


def ops_of(model: bytes) -> set[str]:
    return {n.op_type for n in onnx.load_model_from_string(model).graph.node}


# -- the allow-list on real exported models --


@pytest.mark.parametrize("name, new_ops", [
    ("torch_mlp_digits.onnx", {"Gelu"}),
    ("torch_cnn_digits.onnx", {"Conv", "MaxPool", "AveragePool"}),
    ("torch_cnn_digits_legacy.onnx",
     {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "Shape", "Gather", "Constant"}),
])
def test_pytorch_exports_are_accepted_and_score(name, new_ops):
    """The fixtures of scripts/export_torch_fixtures.py: both exporters, MLP and CNN."""
    model = (FIXTURES / name).read_bytes()
    assert new_ops <= ops_of(model)
    X, y = digits()
    labels, probabilities, classes = onnx_model.load(model).predict(X, C, want_proba=True)
    assert np.mean(labels == y) > 0.9
    assert probabilities.shape == (len(y), 10) and list(classes) == list(range(10))


def test_lightgbm_and_xgboost_through_onnxmltools_are_accepted():
    lgb = pytest.importorskip("lightgbm")
    xgb = pytest.importorskip("xgboost")
    pytest.importorskip("onnxmltools")
    from onnxmltools.convert import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    X, y = digits()
    X = X.astype(np.float32)
    types = [("X", FloatTensorType([None, X.shape[1]]))]
    models = [
        convert_lightgbm(lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y),
                         initial_types=types, zipmap=False, target_opset=15),
        convert_lightgbm(lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y),
                         initial_types=types, target_opset=15),  # ZipMap
        convert_xgboost(xgb.XGBClassifier(n_estimators=10, max_depth=3).fit(X, y),
                        initial_types=types, target_opset=15),
    ]
    for model in models:
        labels, _, _ = onnx_model.load(model.SerializeToString()).predict(X, C, want_proba=True)
        assert np.mean(labels == y) > 0.9


def _one_op_model(node: onnx.NodeProto, initializers: list, width: int = 6) -> bytes:
    """(rows, width) -> the node -> ReduceSum over axis 1 -> ArgMax-free integer labels."""
    graph = helper.make_graph(
        [node,
         helper.make_node("ReduceSum", ["h", "axes"], ["s"], keepdims=0),
         helper.make_node("Cast", ["s"], ["label"], to=TensorProto.INT64)],
        "one_op",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None])],
        initializer=[*initializers, numpy_helper.from_array(np.array([1], np.int64), "axes")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)],
                             ir_version=9).SerializeToString()


def _f(name: str, values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.float32), name)


@pytest.mark.parametrize("node, initializers", [
    (helper.make_node("Elu", ["X"], ["h"]), []),
    (helper.make_node("Selu", ["X"], ["h"]), []),
    (helper.make_node("HardSigmoid", ["X"], ["h"]), []),
    (helper.make_node("HardSwish", ["X"], ["h"]), []),
    (helper.make_node("Mish", ["X"], ["h"]), []),
    (helper.make_node("Softsign", ["X"], ["h"]), []),
    (helper.make_node("PRelu", ["X", "slope"], ["h"]), [_f("slope", [0.1])]),
    (helper.make_node("Dropout", ["X"], ["h"]), []),  # inference: the identity
    (helper.make_node("LayerNormalization", ["X", "scale", "bias"], ["h"]),
     [_f("scale", np.ones(6)), _f("bias", np.zeros(6))]),
    (helper.make_node("BatchNormalization", ["X", "g", "b", "m", "v"], ["h"]),
     [_f("g", np.ones(6)), _f("b", np.zeros(6)), _f("m", np.zeros(6)), _f("v", np.ones(6))]),
    (helper.make_node("Slice", ["X", "start", "end", "axis"], ["h"]),
     [numpy_helper.from_array(np.array([1], np.int64), n) for n in ("start", "axis")]
     + [numpy_helper.from_array(np.array([4], np.int64), "end")]),
])
def test_each_new_elementwise_op_runs(node, initializers):
    model = _one_op_model(node, initializers)
    labels = onnx_model.load(model).predict(np.ones((5, 6)), C, want_proba=False)[0]
    assert labels.shape == (5,)


# -- refusals: every problem at once, each with its fix --


def _broken_model() -> bytes:
    """Four problems: a Loop, a ConstantOfShape, a custom op, external data; logits only."""
    external = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3, 4])
    external.data_location = TensorProto.EXTERNAL
    entry = external.external_data.add()
    entry.key, entry.value = "location", "weights.bin"
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "w"], ["logits"]),
         helper.make_node("ConstantOfShape", ["shape"], ["c"]),
         helper.make_node("Mystery", ["X"], ["m"], domain="com.example")],
        "broken",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 4])],
        initializer=[external, numpy_helper.from_array(np.array([2], np.int64), "shape")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example", 1)])
    return model.SerializeToString()


def test_a_refusal_lists_every_problem_with_its_fix():
    with pytest.raises(ModelRejected) as caught:
        onnx_model.load(_broken_model()).predict(np.ones((5, 3)), C, want_proba=True)
    problems = caught.value.problems
    text = "\n".join(problems)
    assert "operator set domain 'com.example' is not allowed" in text
    assert "operator ai.onnx::ConstantOfShape is not allowed" in text
    assert "com.example::Mystery is not allowed: custom operators" in text
    assert "external data: tensors w" in text and "external_data=False" in text
    assert "logits only: output 0 ('logits')" in text and "ArgMax" in text
    assert "needs probabilities" in text
    assert len(problems) == 6
    reason = str(caught.value)
    assert len(reason) <= MAX_REASON_CHARS
    assert reason.endswith("more (wekacoin model check lists them all)")


def test_pytorch_external_data_and_logits_only_are_refused_with_their_fix():
    external = (FIXTURES / "torch_mlp_external.onnx").read_bytes()
    X, _ = digits()
    with pytest.raises(ModelRejected, match=r"external data: .* external_data=False"):
        onnx_model.load(external).predict(X, C, want_proba=False)
    logits = (FIXTURES / "torch_mlp_logits.onnx").read_bytes()
    with pytest.raises(ModelRejected, match="logits only: .* add an ArgMax output"):
        onnx_model.load(logits).predict(X, C, want_proba=False)


def test_input_shape_problems_name_the_fix():
    graph = helper.make_graph(
        [helper.make_node("ArgMax", ["X"], ["label"], axis=1, keepdims=0)], "fixed",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [4, 7])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ModelRejected) as caught:
        onnx_model.load(model.SerializeToString()).predict(np.ones((4, 5)), C, False)
    text = "\n".join(caught.value.problems)
    assert "fixed first axis of 4: export with a dynamic batch axis" in text
    assert "takes 7 features, the task has 5 feature columns" in text


@given(st.lists(st.text(alphabet="abc defgh:;,", min_size=1, max_size=400), min_size=1,
                max_size=12))
def test_a_reason_fits_the_frame_and_no_word_is_cut(problems):
    reason = compose_reason(problems)
    assert len(reason) <= MAX_REASON_CHARS
    shown = reason.split("; and ")[0]
    if "…" not in shown:  # whole problems only
        assert reason.startswith(problems[0])
    else:  # the first problem, cut between words
        kept = shown.removesuffix("…")
        assert problems[0].startswith(kept)
        rest = problems[0][len(kept):]
        assert not kept or not rest or rest[0] in " ,;:" or kept[-1] in " ,;:" or " " not in \
            problems[0][: len(kept) + 1]


def test_a_skops_tree_model_is_refused_naming_the_type_and_the_onnx_route():
    import skops.io
    from sklearn.tree import DecisionTreeClassifier

    from wekacoin.evaluation import skops_model

    X, y = digits()
    blob = skops.io.dumps(DecisionTreeClassifier(max_depth=2).fit(X, y))
    with pytest.raises(ModelRejected) as caught:
        skops_model.load(blob, 2**30)
    assert str(caught.value) == (
        "skops file names untrusted types (sklearn.tree._tree.Tree): tree models travel as "
        "ONNX (skl2onnx, onnxmltools), see docs/models.md"
    )


# -- the work bound --


def test_work_is_counted_in_integers_as_documented():
    """MatMul (rows x 3) @ (3 x 4): 4 outputs per row, each 3 multiply-adds; ReduceSum by its
    input; Cast by its output."""
    w = _f("w", np.ones((6, 4)))
    model = onnx.load_model_from_string(
        _one_op_model(helper.make_node("MatMul", ["X", "w"], ["h"]), [w]))
    rows = 10
    matmul, reduce, cast = rows * 4 * 6, rows * 4, rows
    assert compute_work(model, rows, 6) == 3 * NODE_UNITS + matmul + reduce + cast
    assert work_limit(30_000) == 30_000_000_000


def test_tree_ensembles_cost_rows_times_the_sum_of_their_depths():
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier

    X, y = digits()
    forest = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, y)
    model = to_onnx(forest, X[:1].astype(np.float32), options={"zipmap": False})
    depths = sum(t.get_depth() + 1 for t in forest.estimators_)  # nodes on the longest path
    tree_node = next(n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier")
    work = compute_work(model, 100, 64)
    outputs = 100 + 100 * 10  # labels and probabilities
    assert work >= NODE_UNITS + outputs + 100 * depths
    assert tree_node is not None and work < 100 * depths + 10 * NODE_UNITS + 10_000


def _over_the_bound() -> bytes:
    return hostile.memory_hog(4, doublings=30)


def test_a_model_over_the_work_bound_is_refused_identically_everywhere():
    """In process, in this test session's sandbox and in a second sandbox with other node
    settings (parallelism): the same INVALID reason, word for word."""
    model = _over_the_bound()
    schema = DataSchema(tuple(f"x{i}" for i in range(4)), "y", TaskKind.REGRESSION)
    X = np.random.default_rng(0).normal(size=(50, 4))
    group = encode_group(X, X.sum(axis=1), schema)
    task = TaskSpec(Metric.RMSE, schema, limits=Limits(wall_seconds=10))
    with pytest.raises(ModelRejected) as caught:
        onnx_model.load(model, max_work=work_limit(10_000)).predict(
            X, TaskKind.REGRESSION, want_proba=False
        )
    assert caught.value.problems[0].startswith("work bound: the graph asks for")
    assert "limit of 10,000,000,000 " in str(caught.value)  # the task's 10 s, not a default
    reasons = {str(caught.value)}
    for sandbox in (shared_sandbox(), None):
        with (ForkServerSandbox(parallel=2) if sandbox is None else _same(sandbox)) as box:
            with EvaluationSession(task, {0: group}, None, box) as session:
                outcome = session.evaluate(model, 0, check_claim=False)
        assert outcome.status is Status.INVALID
        reasons.add(outcome.reason)
    assert len(reasons) == 1, reasons


class _same:
    """A context manager around a sandbox that stays open."""

    def __init__(self, sandbox: ForkServerSandbox) -> None:
        self.sandbox = sandbox

    def __enter__(self) -> ForkServerSandbox:
        return self.sandbox

    def __exit__(self, *exc: object) -> None:
        pass
