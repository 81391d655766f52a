"""Fetch the blobs a block reveals as soon as the block lands.

A task's data groups, its baseline and its models are revealed by CID in transactions; the
evaluators need every byte of them at the task's `upload_end`. Fetching each one when its
reveal lands spreads the transfer over the reveal windows, so the evaluation starts with its
inputs on disk instead of fetching all of them against its deadline (on a loaded machine that
deadline is what turned slow fetches into UNEVALUATED rankings that could not agree).

`revealed_cids` is pure; `Replicator` is the trio adapter around a blocking `BlobStore`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

import trio

from wekacoin.errors import WekaError
from wekacoin.ports import BlobStore
from wekacoin.types.block import Block
from wekacoin.types.tx import RevealModel, RevealTest, RevealTraining

log = logging.getLogger(__name__)

QUEUE = 4_096
"""CIDs waiting to be fetched; beyond this, reveals are left to the evaluation's own fetch."""
ATTEMPTS = 4
RETRY_FIRST_S = 1.0
"""Seconds before the second attempt; each later wait doubles (a reveal's bytes may reach
the node's peers a moment after the block that reveals them)."""


def revealed_cids(block: Block) -> list[str]:
    """The CIDs of the blobs that `block`'s transactions reveal, in block order, once each."""
    cids: list[str] = []
    for tx in block.txs:
        match tx.unsigned.body:
            case RevealTraining(groups=groups, baseline_cid=baseline):
                cids.extend(g.cid for g in groups)
                cids.append(baseline)
            case RevealTest(groups=groups):
                cids.extend(g.cid for g in groups)
            case RevealModel(model_cid=model):
                cids.append(model)
            case _:
                pass
    return list(dict.fromkeys(cids))


class Replicator:
    """Fetches revealed blobs in the background, one at a time, with a few retries.

    `on_block` is called on the trio thread for each committed block; `run` is the task
    that fetches. A blob already held is skipped; one that cannot be fetched after ATTEMPTS
    is left to the evaluation, which asks again until its own deadline."""

    def __init__(self, blobs: BlobStore, *,
                 sleep: Callable[[float], Awaitable[None]] = trio.sleep) -> None:
        self._blobs = blobs
        self._sleep = sleep
        self._send, self._receive = trio.open_memory_channel[str](QUEUE)
        self.fetched = 0
        self.held = 0
        """Revealed blobs that were already here."""
        self.failed = 0
        self.skipped = 0
        """Revealed blobs not queued: the queue was full."""
        self._held_listeners: list[Callable[[str], None]] = []

    def on_held(self, listener: Callable[[str], None]) -> None:
        """Call `listener(cid)` (on the trio thread) for each queued blob found here or
        fetched: the storage keeper learns what it could claim."""
        self._held_listeners.append(listener)

    def on_block(self, block: Block) -> None:
        self.enqueue(revealed_cids(block))

    def enqueue(self, cids: Iterable[str]) -> None:
        for cid in cids:
            try:
                self._send.send_nowait(cid)
            except trio.WouldBlock:
                self.skipped += 1

    async def run(self) -> None:
        async for cid in self._receive:
            await self._fetch(cid)

    async def _fetch(self, cid: str) -> None:
        wait = RETRY_FIRST_S
        for attempt in range(1, ATTEMPTS + 1):
            try:
                if await trio.to_thread.run_sync(self._blobs.has, cid):
                    self.held += 1
                else:
                    await trio.to_thread.run_sync(self._blobs.get, cid)
                    self.fetched += 1
                    log.debug("fetched revealed blob %s", cid)
                for listener in self._held_listeners:
                    listener(cid)
                return
            except (WekaError, OSError) as e:
                if attempt == ATTEMPTS:
                    self.failed += 1
                    log.info("revealed blob %s not fetched (%s); the evaluation will ask "
                             "again", cid, e)
                    return
            await self._sleep(wait)
            wait *= 2
