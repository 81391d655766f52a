"""What evaluating one model yields: a score, a refusal, or no verdict in time.

The chain's ranking types wrap this later; it stays free of floats so that it can enter
consensus as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    SCORED = "scored"
    INVALID = "invalid"
    UNEVALUATED = "unevaluated"


@dataclass(frozen=True)
class Outcome:
    """SCORED carries the integer score; INVALID and UNEVALUATED carry a short reason."""

    status: Status
    score: int | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if (self.status is Status.SCORED) != (self.score is not None):
            raise ValueError("an Outcome has a score exactly when it is SCORED")

    @classmethod
    def scored(cls, score: int) -> Outcome:
        return cls(Status.SCORED, score=score)

    @classmethod
    def invalid(cls, reason: str) -> Outcome:
        return cls(Status.INVALID, reason=reason)

    @classmethod
    def unevaluated(cls, reason: str) -> Outcome:
        return cls(Status.UNEVALUATED, reason=reason)
