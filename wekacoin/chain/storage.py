"""Proof-of-storage weight (paper III-C): validators are selected for keeping the chain's data.

What counts: the blobs reveals name with their byte size (data groups, baselines, models),
indexed as `ChainBlob`s. A validator claims blobs with ClaimStorage; a claim earns weight only
once a challenge drawn over it has been answered.

Storage transactions are signed by the validator key (the node's key), not the staking
account: a node claims and answers on its own, without the operator's wallet. The fee comes
from the validator key's own account; the claims and the weight belong to the bond the key
speaks for.

Every `storage_epoch` blocks, at the start of the epoch's first block (height E, E a multiple
of storage_epoch, E > 0), in this order:

1. Every challenge still open is missed: the validator loses all its claims (it must claim
   again and pass again). A validator whose counting stake fell below min_stake loses its
   claims too: stake stays the Sybil anchor.
2. Credit: each proven blob of size s held (proven) by h validators credits `s // h` bytes to
   each; the remainder `s mod h` is credited to nobody, so splitting one copy across
   identities never gains (5 identities earn at most what one earns, and exactly that when h
   divides s). Storage weight = `credited * storage_weight_per_mib // MiB`, capped at 2^47;
   it counts from E + stake_lookback, like stake, so nobody who knows a seed can steer it.
3. Draw: for each validator with claims, `storage_challenges` (blob, leaf) pairs from the
   block's seed: the blob by a size-weighted index over its claims (ascending CID order), the
   leaf uniformly over the blob's 256 KiB leaves (content.proof). Each draw takes 128 bits of
   SHA-512(domain || seed || address || j) modulo the range: the bias is below 2^-80.

A StorageProof answers the open challenge within `storage_response_window` blocks of E; the
chain checks each proof against the CID and the size alone (content.proof.verify_leaf_proof).
Passing proves every claim added before E. A wrong proof is an invalid transaction (never in
a block), so it counts as missing.

Limit: this proves the data was retrievable by the validator within the window, not that it
keeps a unique physical copy (that needs Filecoin-style sealing); one that fetches on demand
still makes the data available, and the holder split caps what it can gain.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import Counter
from dataclasses import replace

from wekacoin.chain.accounts import schedule_stake_change
from wekacoin.chain.context import BlockContext
from wekacoin.chain.errors import InvalidField, InvalidStorageProof, LimitExceeded, StorageError
from wekacoin.chain.state import State
from wekacoin.content.cid import CHUNK_SIZE, is_canonical_cid, leaf_count
from wekacoin.content.errors import StorageProofError
from wekacoin.content.proof import verify_leaf_proof
from wekacoin.types.genesis import Params
from wekacoin.types.ledger import (
    Account,
    ChainBlob,
    Challenge,
    ChallengeItem,
    ChallengeResult,
    Claim,
    Pending,
    StorageRecord,
)
from wekacoin.types.primitives import Address, ByteSize, Height, TaskId
from wekacoin.types.tx import ClaimStorage, StorageProof, VerifiedTx

MiB = 1 << 20
MAX_STORAGE_WEIGHT = 2**47
MAX_STORAGE_VALIDATORS = 2**16
PROOF_PATH_ALLOWANCE = 64 * 1024
"""Bytes a proof's DAG path and framing may take beside its leaf (a path over 2^40 bytes is
three inner nodes of at most ~10 KiB)."""
_CHALLENGE_DOMAIN = b"wekacoin/storage-challenge/v1"


def storage_proof_tx_bytes(params: Params) -> int:
    """Size limit of a StorageProof transaction: the usual limit plus a leaf and a path per
    challenge (other kinds keep max_tx_bytes)."""
    return params.max_tx_bytes + params.storage_challenges * (CHUNK_SIZE + PROOF_PATH_ALLOWANCE)


def is_epoch_start(height: int, params: Params) -> bool:
    return height > 0 and height % params.storage_epoch == 0


def epoch_of(height: int, params: Params) -> int:
    return height // params.storage_epoch


def storage_weight(credited: int, params: Params) -> int:
    return min(credited * params.storage_weight_per_mib // MiB, MAX_STORAGE_WEIGHT)


def register_blob(state: State, cid: str, size: int, task_id: int) -> None:
    """A reveal names `cid` with `size`: the first reveal of a CID fixes its size (the CID
    fixes the bytes, so a later reveal stating another size only makes its own fetch fail)."""
    if state.get_blob(cid) is None:
        state.put_blob(ChainBlob(cid, ByteSize(size), TaskId(task_id)))


def check_blob_size(size: int, limit: int, what: str) -> None:
    if not 1 <= size <= limit:
        raise InvalidField(f"{what}: a size of {size} bytes is outside [1, {limit}]")


# -- transactions --


def process_claim_storage(
    state: State, vtx: VerifiedTx, body: ClaimStorage, payer: Account, ctx: BlockContext
) -> None:
    params = state.params
    if params.storage_weight_per_mib == 0:
        raise StorageError("this chain gives no weight for storage (storage_weight_per_mib is 0)")
    owner = _bond_owner(state, vtx)
    bond = state.get_bond(owner)
    if bond is None or bond.stake < params.min_stake:
        raise StorageError(
            f"only a validator with at least {params.min_stake} stake counting can claim storage"
        )
    if not body.add and not body.drop:
        raise InvalidField("a claim adds or drops at least one blob")
    _check_cid_list(body.add, "add")
    _check_cid_list(body.drop, "drop")
    if set(body.add) & set(body.drop):
        raise InvalidField("a CID is both added and dropped")
    record = state.get_storage(owner) or StorageRecord()
    claims = {c.cid: c for c in record.claims}
    for cid in body.drop:
        if cid not in claims:
            raise StorageError(f"{cid} is not claimed by this account")
        del claims[cid]
    for cid in body.add:
        if cid in claims:
            raise StorageError(f"{cid} is already claimed by this account")
        blob = state.get_blob(cid)
        if blob is None:
            raise StorageError(
                f"{cid} is not a blob the chain knows (a revealed data group, baseline or model)"
            )
        claims[cid] = Claim(cid, blob.size, ctx.height)
    if len(claims) > params.max_storage_claims:
        raise LimitExceeded(f"a validator holds at most {params.max_storage_claims} claims")
    tip = state.tip
    if owner not in tip.storage_validators:
        if len(tip.storage_validators) >= MAX_STORAGE_VALIDATORS:
            raise LimitExceeded(f"at most {MAX_STORAGE_VALIDATORS} accounts may claim storage")
        state.put_tip(replace(
            tip, storage_validators=tuple(sorted(tip.storage_validators + (owner,)))
        ))
    state.put_account(vtx.sender, payer)
    state.put_storage(owner, replace(record, claims=tuple(claims[c] for c in sorted(claims))))


def _bond_owner(state: State, vtx: VerifiedTx) -> Address:
    owner = state.get_validator(vtx.tx.unsigned.sender)
    if owner is None:
        raise StorageError(
            "storage transactions are signed by a validator key (the node's key); this key"
            " bonds no stake"
        )
    return owner


def _check_cid_list(cids: tuple[str, ...], name: str) -> None:
    for cid in cids:
        if not is_canonical_cid(cid):
            raise InvalidField(f"{name}: {cid!r:.80} is not a CID in canonical form")
    if list(cids) != sorted(set(cids)):
        raise InvalidField(f"{name}: list the CIDs in ascending order, each once")


def process_storage_proof(
    state: State, vtx: VerifiedTx, body: StorageProof, payer: Account, ctx: BlockContext
) -> None:
    owner = _bond_owner(state, vtx)
    record = state.get_storage(owner)
    challenge = None if record is None else record.challenge
    if record is None or challenge is None or challenge.epoch != body.epoch:
        raise StorageError(f"this account has no open storage challenge of epoch {body.epoch}")
    if ctx.height > challenge.deadline:
        raise StorageError(
            f"the storage challenge of epoch {body.epoch} closed at height {challenge.deadline}"
        )
    if len(body.proofs) != len(challenge.items):
        raise InvalidStorageProof(
            f"the challenge asks {len(challenge.items)} proofs, the transaction has"
            f" {len(body.proofs)}"
        )
    for i, (item, proof) in enumerate(zip(challenge.items, body.proofs, strict=True)):
        if (proof.cid, proof.leaf_index) != (item.cid, item.leaf_index):
            raise InvalidStorageProof(
                f"proof {i} is for {proof.cid:.80} leaf {proof.leaf_index}; the challenge asks"
                f" {item.cid} leaf {item.leaf_index}"
            )
        blob = state.get_blob(item.cid)
        assert blob is not None, f"a challenge names {item.cid}, which the chain does not know"
        try:
            verify_leaf_proof(item.cid, blob.size, item.leaf_index, proof.nodes, proof.leaf)
        except StorageProofError as e:
            raise InvalidStorageProof(
                f"proof {i} ({item.cid} leaf {item.leaf_index}): {e}"
            ) from None
    claims = tuple(
        replace(c, proven=True) if c.added < challenge.drawn else c for c in record.claims
    )
    state.put_account(vtx.sender, payer)
    state.put_storage(owner, replace(
        record, claims=claims, challenge=None, last_epoch=challenge.epoch,
        last_result=ChallengeResult.PASSED,
    ))


# -- the epoch boundary --


def process_storage_epoch(state: State, height: int, seed: bytes) -> None:
    """At the start of block `height`: if it opens an epoch, settle the last challenges,
    recompute the storage weights, and draw the new challenges (see the module docstring)."""
    params = state.params
    if not is_epoch_start(height, params) or not state.tip.storage_validators:
        return
    records: dict[Address, StorageRecord] = {}
    for address in state.tip.storage_validators:
        record = state.get_storage(address)
        assert record is not None, f"{address.hex()} is listed as storing but has no record"
        if record.challenge is not None:
            record = replace(record, claims=(), challenge=None, last_epoch=record.challenge.epoch,
                             last_result=ChallengeResult.MISSED)
        if state.get_existing_bond(address).stake < params.min_stake:
            record = replace(record, claims=())
        records[address] = record
    holders = Counter(c.cid for r in records.values() for c in r.claims if c.proven)
    epoch = epoch_of(height, params)
    matures = Height(height + params.stake_lookback)
    keep = []
    for address in sorted(records):
        record = records[address]
        credited = sum(c.size // holders[c.cid] for c in record.claims if c.proven)
        weight = storage_weight(credited, params)
        bond = state.get_existing_bond(address)
        scheduled = bond.storage if record.pending is None else record.pending.amount
        pending = record.pending
        if weight != scheduled:
            pending = Pending(matures, weight)
            schedule_stake_change(state, matures, address)
        challenge = None
        if record.claims:
            challenge = Challenge(
                epoch, Height(height), Height(height + params.storage_response_window),
                draw_challenge(seed, address, record.claims, params.storage_challenges),
            )
        record = replace(record, credited=ByteSize(credited), pending=pending, challenge=challenge)
        state.put_storage(address, record)
        if record.claims or pending is not None or bond.storage:
            keep.append(address)
    state.put_tip(replace(state.tip, storage_validators=tuple(keep)))


def draw_challenge(
    seed: bytes, address: bytes, claims: tuple[Claim, ...], count: int
) -> tuple[ChallengeItem, ...]:
    """`count` (blob, leaf) pairs over `claims` (ascending by CID): blob by size-weighted
    index, leaf uniformly. Pure: every node draws the same from the same seed."""
    ends = []
    total = 0
    for claim in claims:
        total += claim.size
        ends.append(total)
    items = []
    for j in range(count):
        h = hashlib.sha512(_CHALLENGE_DOMAIN + seed + address + j.to_bytes(4, "big")).digest()
        point = int.from_bytes(h[:16], "big") % total
        claim = claims[bisect.bisect_right(ends, point)]
        leaf = int.from_bytes(h[16:32], "big") % leaf_count(claim.size)
        items.append(ChallengeItem(claim.cid, leaf))
    return tuple(items)
