"""Evaluation: metrics, task data, model formats, and the sandbox that runs untrusted models.

Trusted side (this process): `metrics`, `data`, `formats`, `evaluate`, `sandbox`.
Inside the sandbox (fork server and its children): `forkserver`, `confine`, `seccomp_filter`,
`worker`, `onnx_model`, `skops_model`. Between them only `wire` frames travel.
"""

from wekacoin.evaluation.data import (
    DataError,
    DataSchema,
    Dataset,
    encode_group,
    parse_features,
    parse_group,
    parse_split,
    split_into_groups,
)
from wekacoin.evaluation.evaluate import (
    BaselineMismatch,
    BaselineRejected,
    PredictionFailed,
    Submission,
    SubmissionResult,
    TaskEvaluation,
    TaskSpec,
    check_baseline,
    evaluate_task,
    predict,
    sha256_verifier,
)
from wekacoin.evaluation.formats import ModelFormat, ModelRejected, UnsupportedModelFormat, detect_format
from wekacoin.evaluation.isolation import Isolation, Namespaces
from wekacoin.evaluation.metrics import InvalidPrediction, Predictions, compute_score
from wekacoin.evaluation.outcome import Outcome, Status
from wekacoin.evaluation.sandbox import ForkServerSandbox, Limits, SandboxError

__all__ = [
    "BaselineMismatch", "BaselineRejected", "DataError", "DataSchema", "Dataset",
    "ForkServerSandbox", "InvalidPrediction", "Isolation", "Limits", "ModelFormat",
    "ModelRejected", "Namespaces", "Outcome", "PredictionFailed", "Predictions", "SandboxError",
    "Status", "Submission", "SubmissionResult", "TaskEvaluation", "TaskSpec",
    "UnsupportedModelFormat", "check_baseline", "compute_score", "detect_format",
    "encode_group", "evaluate_task", "parse_features", "parse_group", "parse_split", "predict",
    "sha256_verifier", "split_into_groups",
]
