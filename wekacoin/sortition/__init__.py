"""Sortition: who proposes, who votes, who evaluates, and with how many sub-users (pure).

`select` (for one's own key) and `verify` (for anyone's proof) return the selection with its
j; `compute_subusers` is the integer binomial CDF walk both use. See `sortition.sortition` for
the VRF inputs of each role and the seed chain, `sortition.binomial` for the rounding rule.
"""

from wekacoin.sortition.binomial import compute_subusers, selection_threshold
from wekacoin.sortition.sortition import (
    Role,
    Selection,
    committee_size,
    compute_block_seed,
    compute_empty_seed,
    compute_priority,
    select,
    sortition_alpha,
    verify,
)

__all__ = [
    "Role", "Selection", "committee_size", "compute_block_seed", "compute_empty_seed",
    "compute_priority", "compute_subusers", "select", "selection_threshold", "sortition_alpha",
    "verify",
]
