"""Helpers for the mempool tests: a LocalChain with a pool, and signed transactions with any
nonce and fee."""

from __future__ import annotations

from wekacoin.chain.blocks import apply_block
from wekacoin.chain.transactions import sign_tx
from wekacoin.mempool import BlockLimits, Mempool, MempoolPolicy
from wekacoin.testing.chain import LocalChain
from wekacoin.types.block import Block
from wekacoin.types.tx import Transfer, Tx, TxBody


class PoolChain:
    def __init__(self, policy: MempoolPolicy | None = None, **chain_args) -> None:
        self.chain = LocalChain(**chain_args)
        self.genesis_hash = self.chain.genesis.hash  # LocalChain.tx re-hashes the genesis
        self.pool = Mempool(self.chain.state, policy)

    @property
    def keys(self):
        return self.chain.keys

    def sign(self, key: int, nonce: int, fee: int = 1, body: TxBody | None = None) -> Tx:
        body = body or Transfer(self.keys[(key + 1) % len(self.keys)].address, 1)
        return sign_tx(self.keys[key], self.genesis_hash, nonce, fee, body)

    def transfer(self, key: int, nonce: int, fee: int = 1, amount: int = 1, to: int = 0) -> Tx:
        return self.sign(key, nonce, fee, Transfer(self.keys[to].address, amount))

    def limits(self, max_txs: int = 1000, max_bytes: int = 10**6) -> BlockLimits:
        return BlockLimits(max_txs, max_bytes)

    def select(self, **limits) -> list:
        return self.pool.select(self.chain.state, self.limits(**limits))

    def commit(self, txs=()) -> tuple[Block, list]:
        """Commit `txs` on the chain (not through the pool) and tell the pool."""
        block = self.chain.commit(list(txs))
        return block, self.pool.on_commit(self.chain.state, block)

    def commit_selected(self, **limits) -> tuple[Block, list]:
        return self.commit([v.tx for v in self.select(**limits)])

    def assert_select_builds(self) -> list:
        """select() gives a sequence build_block and apply_block accept."""
        chosen = self.select()
        block, _ = self.chain.build([v.tx for v in chosen])
        apply_block(self.chain.state, block)
        return chosen
