"""Catching up: fetch certified blocks from peers that are ahead, check each certificate
against our own tip (a quorum of verified votes for exactly that block), apply the block with
the chain rules, commit it. One sync at a time; a peer that sends a bad block or certificate
is penalised and the next one is asked.

Forks: BA* can commit a TENTATIVE block that the rest of the network decided otherwise. When
a peer's chain does not extend our tip (it is ahead on another branch, or at our height with
another tip), we find the last block we share and ask the fork choice
(`consensus/fork_choice.py`, the same function the simulator uses) which branch to keep: if
it prefers the peer's, we roll back to the fork and take the peer's certified blocks. Ties
are broken deterministically, so two nodes on equal TENTATIVE branches end on one; a branch
that would replace a FINAL block is refused and its peer penalised.

Progress: `progress()` tells how far behind the node is (against the highest tip its peers
announced) and how fast it catches up; a catch-up of `CATCH_UP_BLOCKS` or more is logged at
INFO when it starts, every `PROGRESS_LOG_MS` while it lasts, and when it ends. Each batch is
a DEBUG line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import trio

from wekacoin.chain.blocks import apply_block
from wekacoin.chain.errors import ChainError
from wekacoin.consensus.fork_choice import Branch, fork_height, prefers
from wekacoin.consensus.messages import Certificate
from wekacoin.consensus.verify import ConsensusError, RoundContext, Verifier, verify_certificate
from wekacoin.net.api import PeerStatus
from wekacoin.net.errors import RequestError, SyncError
from wekacoin.net.messages import SyncedBlock
from wekacoin.node.chain import ChainService, RollbackRefused
from wekacoin.ports import Network
from wekacoin.store.layout import UNDO_DEPTH
from wekacoin.types.block import Block
from wekacoin.types.codec import DecodeError, decode
from wekacoin.types.primitives import Hash

log = logging.getLogger("wekacoin.node.sync")

BATCH = 128  # blocks per request
CATCH_UP_BLOCKS = 8  # a sync this far behind is worth INFO lines; following the tip is not
PROGRESS_LOG_MS = 10_000


@dataclass(frozen=True)
class SyncProgress:
    syncing: bool
    target_height: int  # the highest tip peers announced (our own when they are behind)
    local_height: int
    blocks_per_s: float | None  # while syncing, once it has run a second and applied blocks

    @property
    def behind(self) -> int:
        return self.target_height - self.local_height

    def to_json(self) -> dict[str, object]:
        rate = None if self.blocks_per_s is None else round(self.blocks_per_s, 2)
        return {"syncing": self.syncing, "target_height": self.target_height,
                "local_height": self.local_height, "behind": self.behind,
                "blocks_per_s": rate}


class Syncer:
    def __init__(self, chain: ChainService, net: Network, verifier: Verifier,
                 on_block: Callable[[Block | None], None], now: Callable[[], int]) -> None:
        """`on_block(block)` after each block applied (None after a rollback)."""
        self.chain = chain
        self.net = net
        self.verifier = verifier
        self._on_block = on_block
        self._now = now
        self._lock = trio.Lock()
        self.syncing = False
        self._started: tuple[int, int] = (0, 0)  # (ms, height) when the running sync began
        self._logged_ms = 0
        self._announced_ms = -PROGRESS_LOG_MS

    def best_peer_height(self) -> int:
        return max((p.tip_height for p in self.net.peers()), default=0)

    def progress(self) -> SyncProgress:
        local = self.chain.height
        rate = None
        if self.syncing:
            started_ms, started_height = self._started
            seconds = (self._now() - started_ms) / 1000
            if seconds >= 1 and local > started_height:
                rate = (local - started_height) / seconds
        return SyncProgress(self.syncing, max(local, self.best_peer_height()), local, rate)

    async def sync(self) -> None:
        """Catch up with the peers; returns when none has a next block (or none helps)."""
        if self._lock.locked():
            return
        async with self._lock:
            self.syncing = True
            now = self._now()
            self._started, self._logged_ms = (now, self.chain.height), now
            behind = self.progress().behind
            # at most one such line a PROGRESS_LOG_MS: a peer may announce a tip it never serves
            if behind >= CATCH_UP_BLOCKS and now - self._announced_ms >= PROGRESS_LOG_MS:
                self._announced_ms = now
                log.info("catching up: height %d, peers at %d (%d blocks behind)",
                         self.chain.height, self.chain.height + behind, behind)
            try:
                await self._catch_up()
            finally:
                self.syncing = False
                self._log_end()

    async def _catch_up(self) -> None:
        # A peer's tip is what its last hello said (every status_interval, 15 s) while the
        # chain grows every second or so: ask the highest first, for what it has now.
        tried: set[str] = set()
        while True:
            untried = [p for p in self.net.peers() if p.peer_id not in tried]
            if not untried:
                return
            peer = max(untried, key=lambda p: p.tip_height)
            start = self.chain.height + 1
            try:
                synced = await self.net.request_blocks(peer.peer_id, start, BATCH)
            except SyncError as e:
                synced = list(e.partial)
                log.info("sync from %s stopped early: %s", peer.peer_id[:16], e)
            except RequestError as e:
                log.info("sync from %s failed: %s", peer.peer_id[:16], e)
                tried.add(peer.peer_id)
                continue
            if not synced and not self._other_tip_at_our_height(peer):
                tried.add(peer.peer_id)
                continue
            verdict = await self._extends_our_tip(peer.peer_id, synced)
            if verdict == "rolled back":
                continue  # the same peer again, from the fork point
            if verdict == "no":
                tried.add(peer.peer_id)
                continue
            if not synced:
                tried.add(peer.peer_id)
                continue
            for item in synced:
                if not self._apply(peer.peer_id, item.block, item.certificate):
                    tried.add(peer.peer_id)
                    break
            else:
                log.debug("synced to height %d from %s", self.chain.height, peer.peer_id[:16])
                self._log_progress()

    def _log_progress(self) -> None:
        now = self._now()
        progress = self.progress()
        if now - self._logged_ms < PROGRESS_LOG_MS or progress.behind < CATCH_UP_BLOCKS:
            return
        self._logged_ms = now
        rate = progress.blocks_per_s
        log.info("catching up: height %d of %d%s", progress.local_height,
                 progress.target_height, "" if rate is None else f" ({rate:.1f} blocks/s)")

    def _log_end(self) -> None:
        started_ms, started_height = self._started
        applied = self.chain.height - started_height
        if applied < CATCH_UP_BLOCKS:
            return
        seconds = (self._now() - started_ms) / 1000
        behind = self.progress().behind
        log.info("%s at height %d: %d blocks in %.1f s%s",
                 "caught up" if behind < CATCH_UP_BLOCKS else "sync stopped", self.chain.height,
                 applied, seconds, f", {behind} behind" if behind else "")

    def _other_tip_at_our_height(self, peer: PeerStatus) -> bool:
        """The peer's last hello puts it at our height on another block: an equal branch."""
        state = self.chain.state
        return peer.tip_height == state.height > 0 and peer.tip_hash != state.block_hash

    async def _extends_our_tip(self, peer_id: str, synced: list[SyncedBlock]) -> str:
        """"yes" if the peer's next block builds on our tip, "rolled back" once we rolled our
        TENTATIVE blocks back to where its chain and ours part (the fork choice prefers its
        branch), "no" if we will not."""
        ours = self.chain.height
        if synced:
            try:
                first = decode(Block, synced[0].block)
            except DecodeError:
                return "yes"  # _apply refuses and penalises it
            if first.height == ours + 1 and first.header.prev_hash == self.chain.state.block_hash:
                return "yes"
            if first.height <= ours and self.chain.store.get_block_hash(first.height) == first.hash:
                return "yes"  # consensus committed it meanwhile: _apply skips what we have
        low = max(0, ours - UNDO_DEPTH)
        try:
            theirs = await self.net.request_blocks(peer_id, low + 1, ours - low)
        except RequestError as e:
            log.info("cannot compare chains with %s: %s", peer_id[:16], e)
            return "no"
        try:
            their_blocks = [decode(Block, item.block) for item in theirs]
            their_finals = [decode(Certificate, item.certificate).final for item in theirs + synced]
            their_blocks += [decode(Block, item.block) for item in synced]
        except DecodeError:
            self.net.penalize(peer_id, "an undecodable block or certificate", 5.0)
            return "no"
        our_hashes = [self._our_block_hash(h) for h in range(low + 1, ours + 1)]
        fork = fork_height(our_hashes, [b.hash for b in their_blocks], low)
        if fork == ours and synced:
            # Same chain up to our tip, yet their next block does not follow it.
            self.net.penalize(peer_id, "a block that does not extend its own chain", 5.0)
            return "no"
        mine = Branch(tuple(our_hashes[fork - low:]), fork < ours and self.chain.is_final(fork + 1))
        other = Branch.of([b.hash for b in their_blocks[fork - low:]], their_finals[fork - low:])
        if not prefers(mine, other):
            if mine.final and other.final:
                log.error("peer %s is on a branch that conflicts with our FINAL chain",
                          peer_id[:16])
                self.net.penalize(peer_id, "a branch against a FINAL block", 5.0)
            return "no"
        try:
            self.chain.rollback(fork, self._now())
        except RollbackRefused as e:
            log.error("peer %s is on a branch that conflicts with our FINAL chain: %s",
                      peer_id[:16], e)
            self.net.penalize(peer_id, "a branch against a FINAL block", 5.0)
            return "no"
        self._on_block(None)
        return "rolled back"

    def _apply(self, peer_id: str, raw_block: bytes, raw_cert: bytes) -> bool:
        state = self.chain.state
        try:
            block = decode(Block, raw_block)
            if block.height <= state.height:
                return True  # consensus committed it while we waited: nothing to apply
            cert = decode(Certificate, raw_cert)
            if block.height != state.height + 1:
                raise ConsensusError(f"block {block.height} does not follow our tip {state.height}")
            if cert.value != block.hash:
                raise ConsensusError("the certificate is for another block")
            verify_certificate(cert, RoundContext(state, self._tip_time()), self.verifier)
            new_state = apply_block(state, block)
        except (DecodeError, ConsensusError, ChainError) as e:
            log.warning("peer %s sent an unusable block: %s", peer_id[:16], e)
            self.net.penalize(peer_id, f"bad synced block: {e}", 5.0)
            return False
        self.chain.commit(block, new_state, raw_cert)
        self._on_block(block)
        return True

    async def fetch_block(self, height: int, block_hash: bytes) -> Block | None:
        """A block the committee decided but we never received: ask peers that have it."""
        for peer in sorted(self.net.peers(), key=lambda p: -p.tip_height):  # tips may be stale
            try:
                synced = await self.net.request_blocks(peer.peer_id, height, 1)
            except RequestError:
                continue
            for item in synced:
                try:
                    block = decode(Block, item.block)
                except DecodeError:
                    continue
                if block.hash == block_hash:
                    return block
        return None

    def _our_block_hash(self, height: int) -> Hash:
        """The hash of our block at `height`, which is at most our tip's."""
        block_hash = self.chain.store.get_block_hash(height)
        assert block_hash is not None, f"the store has no block at height {height}"
        return block_hash

    def _tip_time(self) -> int:
        return self.chain.tip_time()
