"""Helpers for the chain store tests: a LocalChain mirrored into a store, directory
fingerprints, and chains of transfer blocks."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

from wekacoin.chain.blocks import apply_block
from wekacoin.chain.transactions import sign_tx
from wekacoin.store import ChainStore
from wekacoin.testing.chain import LocalChain
from wekacoin.types.block import Block
from wekacoin.types.tx import Transfer


class StoredChain:
    """A LocalChain whose every block is also applied through, and committed to, a store."""

    def __init__(self, path: Path, chain: LocalChain | None = None) -> None:
        self.chain = chain or LocalChain()
        self.path = path
        self.store = ChainStore.open(path, self.chain.genesis)

    def commit(self, txs=(), certificate: bytes = b"", rankings=()) -> Block:
        block = self.chain.commit(list(txs), rankings)
        self.store.commit(block, apply_block(self.store.state(), block), certificate)
        return block

    def tx(self, key_index: int, body, **kw):
        return self.chain.tx(self.chain.keys[key_index], body, **kw)

    def reopen(self) -> ChainStore:
        self.store.close()
        self.store = ChainStore.open(self.path, self.chain.genesis)
        return self.store


def transfer_blocks(chain: LocalChain, count: int, per_block: int, seed: int) -> list[Block]:
    """`count` blocks of `per_block` random transfers among the chain's keys, committed on
    `chain` (signed with a cached genesis hash: LocalChain.tx re-hashes the genesis)."""
    rng = random.Random(seed)
    genesis_hash = chain.genesis.hash
    keys = chain.keys
    blocks = []
    for _ in range(count):
        senders = rng.sample(range(len(keys)), min(per_block, len(keys)))
        txs = [
            sign_tx(keys[s], genesis_hash, chain.state.get_account(keys[s].address).nonce,
                    rng.randint(1, 3), Transfer(keys[rng.randrange(len(keys))].address,
                                                rng.randint(1, 1000)))
            for s in senders
        ]
        blocks.append(chain.commit(txs))
    return blocks


def dir_fingerprint(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under `root`: size, modification time and content hash."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            st = p.stat()
            out[str(p.relative_to(root))] = (
                st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()
            )
    return out
