"""Task metrics and kinds: the names consensus knows, and which way is better.

The scoring itself (scikit-learn) lives in `wekacoin.evaluation.metrics`; consensus only needs
the name, the direction and the fixed-point scale of a score.
"""

from enum import Enum

SCORE_SCALE = 10**6
"""A score enters consensus as the integer round(score * SCORE_SCALE)."""


class TaskKind(str, Enum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class Metric(str, Enum):
    ACCURACY = "accuracy"
    BALANCED_ACCURACY = "balanced_accuracy"
    F1 = "f1"
    ROC_AUC = "roc_auc"
    COHEN_KAPPA = "cohen_kappa"
    RMSE = "rmse"
    MAE = "mae"
    R2 = "r2"
    LOG_LOSS = "log_loss"

    @property
    def higher_is_better(self) -> bool:
        return self not in _LOWER_IS_BETTER

    @property
    def kinds(self) -> frozenset[TaskKind]:
        """The task kinds this metric applies to."""
        return _REGRESSION_ONLY if self in _REGRESSION_METRICS else _CLASSIFICATION_ONLY


_LOWER_IS_BETTER = frozenset({Metric.RMSE, Metric.MAE, Metric.LOG_LOSS})
_REGRESSION_METRICS = frozenset({Metric.RMSE, Metric.MAE, Metric.R2})
_REGRESSION_ONLY = frozenset({TaskKind.REGRESSION})
_CLASSIFICATION_ONLY = frozenset({TaskKind.CLASSIFICATION})


def is_better(metric: Metric, a: int, b: int) -> bool:
    """True when integer score `a` is strictly better than `b` under `metric`."""
    return a > b if metric.higher_is_better else a < b
