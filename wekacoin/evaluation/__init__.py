"""Evaluation: metrics, task data, model formats, and the sandbox that runs untrusted models.

Trusted side (this process): `metrics`, `data`, `formats`, `evaluate`, `sandbox`, `server_link`.
Inside the sandbox (fork server and its children): `forkserver`, `model_process`, `confine`,
`seccomp_filter`, `worker`, `onnx_model`, `skops_model`. Between them only `wire` frames travel.

The public names below load their module on first use: the fork server imports
`wekacoin.evaluation.worker` and must not drag scikit-learn in with this package, or every
fork would copy its pages.
"""

from importlib import import_module
from typing import Any

_PUBLIC = {
    "data": (
        "DataError",
        "DataSchema",
        "Dataset",
        "encode_group",
        "parse_features",
        "parse_group",
        "parse_split",
        "split_into_groups",
    ),
    "evaluate": (
        "BaselineMismatch",
        "BaselineRejected",
        "EvaluationSession",
        "PredictionFailed",
        "Submission",
        "SubmissionResult",
        "TaskEvaluation",
        "TaskSpec",
        "check_baseline",
        "evaluate_task",
        "predict",
        "sha256_verifier",
    ),
    "formats": ("ModelFormat", "ModelRejected", "UnsupportedModelFormat", "detect_format"),
    "isolation": ("Isolation", "Namespaces"),
    "metrics": ("InvalidPrediction", "Predictions", "compute_score"),
    "outcome": ("Outcome", "Status"),
    "sandbox": ("ForkServerSandbox", "Limits", "SandboxError"),
}
_MODULE_OF = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
