"""The mempool: admission through the chain rules, ordering, eviction, block assembly."""

from wekacoin.mempool.errors import (
    AlreadyKnown,
    InvalidTransaction,
    MempoolError,
    NonceGapTooLarge,
    PoolFull,
    ReplacementUnderpriced,
    SenderQueueFull,
)
from wekacoin.mempool.policy import BlockLimits, MempoolPolicy
from wekacoin.mempool.pool import Admission, Dropped, Mempool

__all__ = [
    "Admission", "AlreadyKnown", "BlockLimits", "Dropped", "InvalidTransaction", "Mempool",
    "MempoolError", "MempoolPolicy", "NonceGapTooLarge", "PoolFull", "ReplacementUnderpriced",
    "SenderQueueFull",
]
