"""The node's side of proof-of-storage weight (`wekacoin.chain.storage`): keep the chain's
blobs, claim them, answer the challenges.

A validator earns sortition weight for the chain blobs (revealed data groups, baselines and
models) it proves it holds. The `StorageKeeper` does that with the node's own key, after each
committed block, in this order:

1. Answer. When the chain drew a challenge over this validator's claims and no answer is
   pending, build a proof of each challenged leaf and send a StorageProof at once: it must be
   in a block within `storage_response_window` blocks. A blob the store lost or holds
   corrupted is fetched again on the way (`holdings.py`); if that fails, the keeper tries again
   on the next block, until the deadline, after which the chain records a miss and drops every
   claim (the keeper then claims again what it holds).
2. Check. Every claimed blob must still be here, at the size the chain states: a stat per blob
   (at most `CHECKS_PER_BLOCK` a block, in turn). A lost one is dropped from the claims, since a
   challenge that names it would cost every other claim, and handed to the Replicator to fetch
   again; once back, it is a candidate again.
3. Claim. The held chain blobs not claimed yet, rarest first (fewest validators holding a
   proven claim; ties by CID), up to node.toml's `storage.max_bytes` and the chain's
   `max_storage_claims`; each is pinned before it is claimed. Over the budget (the operator
   lowered it), the most widely held claims are dropped.

What is held is learnt without scanning the store on every block: at start the keeper checks
every chain blob once, and asks the Replicator to fetch the missing ones that would fit, rarest
first; afterwards the Replicator, which fetches what each block reveals, reports each blob that
landed.

Own transactions go through `send` (the daemon's `send_own_tx`: signed with the node key,
journaled and gossiped like an RPC client's). No ClaimStorage is sent while a transaction of
the node key is pending or a challenge is open, so a claim the chain drops can never leave a
proof stuck behind its nonce; a proof may follow a pending claim (it cannot wait).

`count_holders`, `plan_claims` and `storage_status` are pure; `StorageKeeper` is the trio
adapter.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Any

import trio

from wekacoin.chain.state import State
from wekacoin.crypto.keys import KeyPair
from wekacoin.errors import WekaError
from wekacoin.node.chain import ChainService
from wekacoin.node.holdings import Holdings
from wekacoin.node.metrics import NodeMetrics
from wekacoin.types.block import Block
from wekacoin.types.genesis import Params
from wekacoin.types.ledger import Challenge, ChallengeResult, StorageRecord
from wekacoin.types.tx import ClaimStorage, LeafProof, StorageProof, TxBody

log = logging.getLogger("wekacoin.node.storage")

Send = Callable[[TxBody], Awaitable[bytes]]
"""Sign and submit a transaction of the node key; returns its id, raises a WekaError when the
node refuses it."""

CHECKS_PER_BLOCK = 256
"""Claimed blobs whose presence is checked per block (all of them when there are fewer)."""
MAX_CIDS_PER_CLAIM = 512
_CID_BYTES = 64  # a canonical sha2-256 CID is at most 59 characters, plus its length prefix
_TX_OVERHEAD = 256  # sender key, nonce, fee, signature and framing, generously


@dataclass(frozen=True, slots=True)
class ClaimPlan:
    add: tuple[str, ...]
    """Ascending, as ClaimStorage wants them."""
    drop: tuple[str, ...]


def claim_capacity(params: Params) -> int:
    """CIDs one ClaimStorage may list (added and dropped together) within max_tx_bytes."""
    fits = (params.max_tx_bytes - _TX_OVERHEAD) // _CID_BYTES
    return max(1, min(MAX_CIDS_PER_CLAIM, fits))


def count_holders(state: State) -> Counter[str]:
    """How many validators hold a proven claim on each blob."""
    holders: Counter[str] = Counter()
    for address in state.tip.storage_validators:
        record = state.get_storage(address)
        if record is not None:
            holders.update(c.cid for c in record.claims if c.proven)
    return holders


def plan_claims(
    claimed: Mapping[str, int], held: Mapping[str, int], lost: Set[str],
    holders: Mapping[str, int], max_bytes: int, max_claims: int, capacity: int,
) -> ClaimPlan:
    """What to add to and drop from the claims `claimed` (CID -> size), given the blobs
    `held` here (CID -> size) and those found `lost`:

    - drop every lost claim, then, while over `max_bytes` or `max_claims`, the most widely
      held claim (ties: the larger CID);
    - add held, unclaimed blobs rarest first (ties: the smaller CID) while they fit; one too
      large for the room left is skipped, a smaller one may still fit.

    At most `capacity` CIDs in all; drops go first (the rest waits for the next claim)."""
    def rarity(cid: str) -> tuple[int, str]:
        return holders.get(cid, 0), cid

    keep = {cid: size for cid, size in claimed.items() if cid not in lost}
    drop = sorted(set(claimed) - set(keep))
    used = sum(keep.values())
    for cid in sorted(keep, key=rarity, reverse=True):
        if used <= max_bytes and len(keep) <= max_claims:
            break
        used -= keep.pop(cid)
        drop.append(cid)
    if len(drop) >= capacity:
        return ClaimPlan((), tuple(sorted(drop[:capacity])))
    add: list[str] = []
    for cid in sorted(set(held) - set(claimed) - lost, key=rarity):
        if len(keep) + len(add) >= max_claims or len(drop) + len(add) >= capacity:
            break
        if used + held[cid] <= max_bytes:
            add.append(cid)
            used += held[cid]
    return ClaimPlan(tuple(sorted(add)), tuple(sorted(drop)))


def storage_status(
    state: State, node_key: bytes, held: Mapping[str, int] | None = None,
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """The storage part of `node.status` for the validator key `node_key` (docs/rpc.md).
    `held` and `max_bytes` come from a running keeper (None: the node keeps no storage)."""
    owner = state.get_validator(node_key)
    record = (None if owner is None else state.get_storage(owner)) or StorageRecord()
    bond = None if owner is None else state.get_bond(owner)
    proven = [c for c in record.claims if c.proven]
    challenge = record.challenge
    return {
        "keeping": held is not None,
        "max_bytes": max_bytes,
        "held": None if held is None else {"blobs": len(held), "bytes": sum(held.values())},
        "claimed": {"blobs": len(record.claims), "bytes": sum(c.size for c in record.claims)},
        "proven": {"blobs": len(proven), "bytes": sum(c.size for c in proven)},
        "credited_bytes": record.credited,
        "weight": 0 if bond is None else bond.storage,
        "pending_weight": None if record.pending is None else {
            "amount": record.pending.amount, "height": record.pending.height,
        },
        "last_challenge": {"epoch": record.last_epoch, "result": record.last_result.name.lower()},
        "challenge": None if challenge is None else {
            "epoch": challenge.epoch, "drawn": challenge.drawn, "deadline": challenge.deadline,
            "items": len(challenge.items),
        },
    }


class StorageKeeper:
    """Keeps, claims and proves chain blobs for the node's validator key (module docstring).

    `on_block` and `on_held` are called on the trio thread (ChainService and Replicator
    listeners); `run` is the task that does the work, once per batch of blocks."""

    def __init__(
        self, chain: ChainService, holdings: Holdings, key: KeyPair, max_bytes: int, send: Send,
        refetch: Callable[[Iterable[str]], None], metrics: NodeMetrics | None = None,
    ) -> None:
        self._chain = chain
        self._holdings = holdings
        self._key = key
        self.max_bytes = max_bytes
        self._send = send
        self._refetch = refetch
        self._metrics = metrics
        self.held: dict[str, int] = {}
        """Chain blobs here at the size the chain states: CID -> size."""
        self._unchecked: set[str] = set()
        """Blobs the Replicator reported, to check and add to `held`."""
        self._lost: set[str] = set()
        """Claimed blobs found missing, until a drop takes them off the claims."""
        self._cursor = 0
        self._idle_plan: tuple[frozenset[str], frozenset[str], frozenset[str], int] | None = None
        """The inputs of the last plan that had nothing to do (the next is the same)."""
        self._failed_epoch = -1
        self._seen_result: tuple[int, ChallengeResult] | None = None
        self._last_refusal: str | None = None
        """Logged at info once, then at debug while it repeats."""
        self._wake = trio.Event()

    # -- events (trio thread) --

    def on_block(self, block: Block) -> None:
        self._wake.set()

    def on_held(self, cid: str) -> None:
        self._unchecked.add(cid)
        self._wake.set()

    # -- the task --

    async def run(self) -> None:
        await self.scan()
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            try:
                await self.tick()
            except (WekaError, OSError) as e:  # the store or the daemon: again next block
                log.warning("storage keeping failed this block: %s", e)

    async def scan(self) -> None:
        """At start: which chain blobs are here; ask the Replicator for the missing ones that
        would fit, rarest first."""
        reader = self._chain.store.snapshot()

        def check_all() -> tuple[dict[str, int], list[tuple[str, int]]]:
            held, missing = {}, []
            for blob in reader.chain_blobs():
                if self._holdings.held_size(blob.cid) == blob.size:
                    held[blob.cid] = blob.size
                else:
                    missing.append((blob.cid, blob.size))
            return held, missing

        try:
            held, missing = await trio.to_thread.run_sync(check_all)
        except (WekaError, OSError) as e:
            log.warning("could not list the chain blobs held here (%s); learning them as "
                        "blocks reveal them", e)
            return
        self.held.update(held)
        state = self._chain.state
        if self._owner(state) is None:
            return
        holders = count_holders(state)
        room = self.max_bytes - sum(self.held.values())
        wanted = []
        for cid, size in sorted(missing, key=lambda m: (holders.get(m[0], 0), m[0])):
            if size <= room:
                wanted.append(cid)
                room -= size
        log.info("storage: %d chain blobs here (%d bytes); fetching %d more", len(self.held),
                 sum(self.held.values()), len(wanted))
        self._refetch(wanted)
        self._update_metrics(state)

    async def tick(self) -> None:
        state = self._chain.state
        owner = self._owner(state)
        if owner is None:
            return
        await self._check_reported(state)
        record = state.get_storage(owner) or StorageRecord()
        self._note_result(record)
        if record.challenge is not None:
            await self._answer(state, record.challenge)
        await self._check_claims(record)
        bond = state.get_bond(owner)
        if (record.challenge is None and not self._chain.mempool.pending(self._key.address)
                and bond is not None and bond.stake >= state.params.min_stake):
            await self._claim(state, record)
        self._update_metrics(state)

    # -- steps --

    def _owner(self, state: State) -> bytes | None:
        """The account whose bond the node key speaks for (None: the key bonds nothing)."""
        return state.get_validator(self._key.public_key)

    async def _check_reported(self, state: State) -> None:
        if not self._unchecked:
            return
        cids, self._unchecked = self._unchecked, set()
        sizes = {}
        for cid in cids:
            blob = state.get_blob(cid)
            if blob is not None:  # None: revealed on a branch that was rolled back
                sizes[cid] = blob.size

        def check() -> dict[str, int]:
            return {cid: size for cid, size in sizes.items()
                    if self._holdings.held_size(cid) == size}

        found = await trio.to_thread.run_sync(check)
        self.held.update(found)
        self._lost -= found.keys()  # fetched again: its claim can stay
        for cid in sizes.keys() - found.keys():
            log.debug("blob %s is here at another size than the chain states: not claimed", cid)

    def _note_result(self, record: StorageRecord) -> None:
        seen = (record.last_epoch, record.last_result)
        if seen == self._seen_result:
            return
        self._seen_result = seen
        if record.last_result is ChallengeResult.MISSED:
            log.info("storage challenge of epoch %d missed: the chain dropped every claim; "
                     "claiming again", record.last_epoch)
        elif record.last_result is ChallengeResult.PASSED:
            log.debug("storage challenge of epoch %d passed", record.last_epoch)

    async def _answer(self, state: State, challenge: Challenge) -> None:
        pending = self._chain.mempool.pending(self._key.address)
        if any(isinstance(v.body, StorageProof) and v.body.epoch == challenge.epoch
               for v in pending):
            return
        if state.height >= challenge.deadline:  # the next block is past the window
            return
        proofs = []
        for item in challenge.items:
            blob = state.get_blob(item.cid)
            assert blob is not None, f"a challenge names {item.cid}, which the chain lacks"
            try:
                path = await trio.to_thread.run_sync(
                    self._holdings.leaf_proof, item.cid, blob.size, item.leaf_index)
            except (WekaError, ValueError, OSError) as e:
                self._lose(item.cid)
                (log.info if self._failed_epoch != challenge.epoch else log.debug)(
                    "cannot answer the storage challenge of epoch %d yet (%s leaf %d: %s); "
                    "trying again each block until height %d", challenge.epoch, item.cid,
                    item.leaf_index, e, challenge.deadline)
                self._failed_epoch = challenge.epoch
                return
            proofs.append(LeafProof(item.cid, item.leaf_index, path.nodes, path.leaf))
        tx_id = await self._submit(StorageProof(challenge.epoch, tuple(proofs)))
        if tx_id is not None:
            log.info("storage challenge of epoch %d answered (%d leaves, deadline %d): tx %s",
                     challenge.epoch, len(proofs), challenge.deadline, tx_id.hex()[:16])

    async def _check_claims(self, record: StorageRecord) -> None:
        claims = record.claims
        self._lost &= {c.cid for c in claims}
        if not claims:
            return
        start = self._cursor % len(claims)
        batch = (claims[start:] + claims[:start])[:CHECKS_PER_BLOCK]
        self._cursor = start + len(batch)

        def check() -> list[str]:
            return [c.cid for c in batch if self._holdings.held_size(c.cid) != c.size]

        for cid in await trio.to_thread.run_sync(check):
            if cid not in self._lost:
                log.info("claimed blob %s is no longer here: dropping the claim", cid)
            self._lose(cid)

    def _lose(self, cid: str) -> None:
        """`cid` is not here (any more): never claim it until the Replicator brings it back."""
        if self.held.pop(cid, None) is not None:
            self._refetch([cid])
        self._lost.add(cid)

    async def _claim(self, state: State, record: StorageRecord) -> None:
        claimed = {c.cid: c.size for c in record.claims}
        inputs = (frozenset(claimed), frozenset(self.held), frozenset(self._lost),
                  self.max_bytes)
        if inputs == self._idle_plan:
            return
        params = state.params
        plan = plan_claims(claimed, self.held, self._lost, count_holders(state),
                           self.max_bytes, params.max_storage_claims, claim_capacity(params))
        if not plan.add and not plan.drop:
            self._idle_plan = inputs
            return
        self._idle_plan = None
        add = []
        for cid in plan.add:
            try:
                await trio.to_thread.run_sync(self._holdings.keep, cid)
            except WekaError as e:
                log.info("could not pin blob %s (%s): not claimed", cid, e)
                self._lose(cid)
                continue
            add.append(cid)
        if not add and not plan.drop:
            return
        tx_id = await self._submit(ClaimStorage(tuple(add), plan.drop))
        if tx_id is not None:
            log.info("storage claim sent: %d blobs added (%d bytes), %d dropped: tx %s",
                     len(add), sum(self.held[c] for c in add), len(plan.drop),
                     tx_id.hex()[:16])

    async def _submit(self, body: TxBody) -> bytes | None:
        try:
            tx_id = await self._send(body)
        except WekaError as e:  # e.g. the node key's account cannot pay the fee
            refusal = f"the node refused its own {type(body).__name__}: {e}"
            (log.debug if refusal == self._last_refusal else log.info)("%s", refusal)
            self._last_refusal = refusal
            return None
        self._last_refusal = None
        return tx_id

    def _update_metrics(self, state: State) -> None:
        if self._metrics is None:
            return
        owner = self._owner(state)
        record = (None if owner is None else state.get_storage(owner)) or StorageRecord()
        bond = None if owner is None else state.get_bond(owner)
        m = self._metrics
        m.storage_held_bytes.set(sum(self.held.values()))
        m.storage_claimed_blobs.set(len(record.claims))
        m.storage_credited_bytes.set(record.credited)
        m.storage_weight.set(0 if bond is None else bond.storage)
        m.storage_last_result.set(int(record.last_result))

    def status(self, state: State) -> dict[str, Any]:
        return storage_status(state, self._key.public_key, self.held, self.max_bytes)
