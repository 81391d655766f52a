"""The mempool's limits, and the limits of one block's transactions."""

from __future__ import annotations

from dataclasses import dataclass

from wekacoin.types.genesis import Params

DEFAULT_BLOCK_BYTES = 768 * 2**10
"""Genesis bounds a block's transaction count, not its bytes; a block travels to every peer
inside a proposal, one gossip frame of at most 1 MiB, so its builder keeps the transactions
to 768 KiB and leaves the rest to the rankings the block records (at most
`consensus.assemble.BLOCK_RANKING_BYTES`, 192 KiB). A storage proof (a 256 KiB
leaf per challenge, at most two) fits."""


@dataclass(frozen=True, slots=True)
class MempoolPolicy:
    max_txs: int = 10_000
    max_bytes: int = 32 * 2**20
    """Sum of the transactions' sizes (`VerifiedTx.size`)."""
    max_per_sender: int = 64
    max_nonce_gap: int = 16
    """A transaction may wait for at most this many missing nonces before its own
    (0: only the sender's next nonce is accepted)."""
    replace_bump_percent: int = 10
    """A replacement (same sender and nonce) pays at least this much more, and at least 1."""
    max_age_ms: int = 3 * 60 * 60 * 1000

    def replacement_fee(self, fee: int) -> int:
        """The lowest fee that replaces a pending transaction paying `fee`."""
        bump = -(-fee * self.replace_bump_percent // 100)  # rounded up
        return fee + max(1, bump)


@dataclass(frozen=True, slots=True)
class BlockLimits:
    max_txs: int
    max_bytes: int

    @classmethod
    def for_params(cls, params: Params, max_bytes: int = DEFAULT_BLOCK_BYTES) -> BlockLimits:
        return cls(params.max_block_txs, max_bytes)
