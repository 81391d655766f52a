"""Why the mempool refuses a transaction. `str(error)` is the reason to show the user."""

from wekacoin.chain.errors import TxError
from wekacoin.errors import WekaError


class MempoolError(WekaError):
    """A transaction the pool refuses; nothing in the pool changed."""


class InvalidTransaction(MempoolError):
    """The chain rules refuse it against the tip; `error` is the rule's own error."""

    def __init__(self, error: TxError) -> None:
        super().__init__(str(error))
        self.error = error


class AlreadyKnown(MempoolError):
    """The same transaction (same id) is already pending."""


class NonceGapTooLarge(MempoolError):
    """Too many of the sender's nonces are missing before this one."""


class SenderQueueFull(MempoolError):
    """The sender already has the most pending transactions one sender may have."""


class ReplacementUnderpriced(MempoolError):
    """A pending transaction has the same sender and nonce, and this one does not pay enough
    more to replace it."""


class PoolFull(MempoolError):
    """The pool is at its size cap and this transaction's fee is not above the lowest fee the
    pool could evict for it."""
