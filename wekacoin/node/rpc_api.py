"""The node's JSON-RPC namespaces: thin classes over its services (STYLE.md 11).

Every method is documented in docs/rpc.md. Bytes travel as hex, blobs as base64, addresses
as Base58Check, amounts as integers.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Callable

import trio

from wekacoin.content.errors import ContentError, InvalidCidError
from wekacoin.crypto.keys import AddressError, format_address, parse_address
from wekacoin.mempool import MempoolError
from wekacoin.node.admission import Admissions
from wekacoin.node.chain import ChainService, Rejected
from wekacoin.ports import BlobStore
from wekacoin.rpc.protocol import REJECTED, InvalidParams, NotFound, RpcError, parse_hex, rpc_method
from wekacoin.rpc.views import to_json
from wekacoin.types.block import Block
from wekacoin.types.codec import DecodeError, decode
from wekacoin.types.tx import Tx

Clock = Callable[[], int]


def _address(text: Any) -> bytes:
    if not isinstance(text, str):
        raise InvalidParams("an address is a Base58Check string")
    try:
        return parse_address(text)
    except AddressError as e:
        raise InvalidParams(str(e)) from None


def block_json(block: Block, full: bool = True, final: bool | None = None) -> dict[str, Any]:
    out = {"hash": block.hash.hex(), **to_json(block.header), "tx_count": len(block.txs)}
    if final is not None:
        out["final"] = final
    if full:
        out["txs"] = [tx_json(tx) for tx in block.txs]
        out["meta"] = to_json(block.meta)
    return out


def tx_json(tx: Tx) -> dict[str, Any]:
    from wekacoin.crypto.keys import address_of

    u = tx.unsigned
    return {
        "id": tx.id.hex(), "sender": format_address(address_of(u.sender)),
        "nonce": u.nonce, "fee": u.fee, "body": to_json(u.body),
    }


class ChainRpc:
    def __init__(self, chain: ChainService) -> None:
        self._chain = chain

    @rpc_method
    def info(self) -> dict[str, Any]:
        """Chain id, genesis hash, protocol parameters and the current height."""
        config = self._chain.config
        return {
            "chain_id": config.chain_id, "genesis_hash": config.genesis_hash.hex(),
            "height": self._chain.height, "params": to_json(config.params),
        }

    @rpc_method
    def head(self) -> dict[str, Any]:
        """The tip block's header (the genesis at height 0 has no block)."""
        state = self._chain.state
        block = self._chain.store.get_block(state.height) if state.height else None
        if block is None:
            return {
                "height": 0, "hash": state.get_block_hash().hex(), "state_root": state.root().hex(),
            }
        return block_json(block, full=False)

    @rpc_method
    def block(
        self, height: int | None = None, hash: str | None = None, full: bool = True
    ) -> dict[str, Any]:
        """A block by height or hash, with its transactions when `full`."""
        if (height is None) == (hash is None):
            raise InvalidParams("give height or hash")
        if height is not None:
            if type(height) is not int or height < 1:
                raise InvalidParams("height is a positive integer")
            block = self._chain.store.get_block(height)
        else:
            block = self._chain.store.get_block_by_hash(parse_hex(hash, "hash", 32))
        if block is None:
            raise NotFound("no such block")
        return block_json(block, full, self._chain.is_final(block.height))

    @rpc_method
    def tx(self, id: str) -> dict[str, Any] | None:
        """A transaction: in a block (with its height), pending, dropped with a reason, or null."""
        tx_id = parse_hex(id, "id", 32)
        stored = self._chain.store.get_tx(tx_id)
        if stored is not None:
            loc = stored.location
            return {**tx_json(stored.tx), "height": loc.height, "block_hash": loc.block_hash.hex(),
                    "index": loc.index}
        pending = self._chain.mempool.get(tx_id)
        if pending is not None:
            return {**tx_json(pending.tx), "height": None, "pending": True}
        reason = self._chain.dropped_reason(tx_id)
        if reason is not None:
            return {"id": id, "height": None, "rejected": reason}
        return None

    @rpc_method
    def account(self, address: str) -> dict[str, Any]:
        """Balance, nonce, the next nonce to use (pending transactions counted) and stake, as
        of the tip block at `height`."""
        raw = _address(address)
        state = self._chain.state
        account = state.get_account(raw)
        bond = state.get_bond(raw)
        out = {
            "address": format_address(raw), "height": state.height, "balance": account.balance,
            "nonce": account.nonce, "next_nonce": self._chain.mempool.next_nonce(raw), "stake": 0,
        }
        if bond is not None:
            out.update(stake=bond.stake, validator_key=bond.validator_key.hex(),
                       bonding=to_json(bond.bonding), unbonding=to_json(bond.unbonding))
        return out


class ValidatorRpc:
    def __init__(self, chain: ChainService) -> None:
        self._chain = chain

    @rpc_method
    def list(self) -> list[dict[str, Any]]:
        """Every bonded account with its stake, storage weight, credited storage and total
        sortition weight, heaviest first."""
        reader = self._chain.store.snapshot()  # the bonds and the state of one tip
        state = reader.state()
        out: list[dict[str, Any]] = []
        for address, bond in sorted(reader.bonds(), key=lambda ab: (-ab[1].weight, ab[0])):
            if not bond.total and not bond.storage and not bond.unbonding:
                continue
            record = state.get_storage(address)
            claims = () if record is None else record.claims
            out.append({
                "address": format_address(address), "validator_key": bond.validator_key.hex(),
                "stake": bond.stake, "storage_weight": bond.storage, "weight": bond.weight,
                "credited_bytes": 0 if record is None else record.credited,
                "claimed_blobs": len(claims),
                "proven_blobs": sum(1 for c in claims if c.proven),
                "last_challenge": None if record is None else {
                    "epoch": record.last_epoch, "result": record.last_result.name.lower(),
                },
            })
        return out


class TaskRpc:
    def __init__(self, chain: ChainService) -> None:
        self._chain = chain

    @rpc_method
    def list(self, open_only: bool = False) -> list[dict[str, Any]]:
        """Every task (or only open ones) with its phase and submission count."""
        out = []
        open_ids = set(self._chain.state.tip.open_tasks)
        for task_id in self._chain.task_ids():
            if open_only and task_id not in open_ids:
                continue
            view = self._chain.task(task_id)
            assert view is not None  # task_ids() are the ids of stored tasks
            t = view.task
            out.append({
                "id": t.id, "title": t.spec.title, "metric": t.spec.metric.value,
                "phase": self._chain.phase(view), "reward": t.spec.reward,
                "submissions": len(t.submissions), "tbh": t.spec.tbh,
                "supplier": format_address(t.supplier),
            })
        return out

    @rpc_method
    def get(self, task_id: int) -> dict[str, Any]:
        """A task: its specification, phase, data reveals, submissions and leaderboard."""
        if type(task_id) is not int or not 0 <= task_id < 2**64:
            raise InvalidParams("task_id is an integer in [0, 2**64)")  # the ledger's key range
        view = self._chain.task(task_id)
        if view is None:
            raise NotFound(f"there is no task {task_id}")
        from wekacoin.chain import tasks as rules

        t, params = view.task, self._chain.config.params
        task = to_json(t)
        task["phase"] = self._chain.phase(view)
        task["heights"] = {
            "published": t.published_height, "split": rules.split_height(t, params),
            "training_reveal_deadline": rules.training_reveal_deadline(t, params),
            "tbh": t.spec.tbh, "test_reveal_end": rules.reveal_test_end(t, params),
            "upload_end": rules.upload_end(t, params), "ready": rules.ready_height(t, params),
            "settled": t.settled_height or None,
        }
        task["submissions"] = [to_json(s) for s in view.submissions]
        task["leaderboard"] = [to_json(row) for row in self._chain.leaderboard(view)]
        task["settlement"] = None if view.settlement is None else to_json(view.settlement)
        return task


class TxRpc:
    def __init__(self, chain: ChainService, admissions: Admissions, clock: Clock,
                 relay: Callable[[bytes], None]) -> None:
        self._chain = chain
        self._admissions = admissions
        self._clock = clock
        self._relay = relay

    @rpc_method(mutating=True)
    async def submit(self, tx: str) -> dict[str, Any]:
        """Admit a signed transaction (hex of its encoding) and gossip it; -32010 with the
        reason if the node refuses it. An id comes back only once the transaction is
        journaled: the node keeps it pending across restarts and re-sends it to peers until
        a block includes it or it is dropped (chain rules, its nonce taken, expiry)."""
        raw = parse_hex(tx, "tx")
        try:
            decoded = decode(Tx, raw)
        except DecodeError as e:
            raise RpcError(REJECTED, f"not a transaction: {e}") from None
        try:
            admission = await self._admissions.admit(decoded, self._clock(), submitted=raw)
        except (Rejected, MempoolError) as e:
            raise RpcError(REJECTED, str(e)) from None
        self._relay(raw)
        return {"id": admission.vtx.id.hex(), "ready": admission.ready}

    @rpc_method
    def pending(self, address: str | None = None) -> list[dict[str, Any]]:
        """Pending transactions of one sender (or of every sender)."""
        pool = self._chain.mempool
        vtxs = pool.pending(_address(address)) if address is not None else pool.all()
        return [tx_json(v.tx) for v in vtxs]


class BlobRpc:
    def __init__(self, blobs: BlobStore, max_bytes: int) -> None:
        self._blobs = blobs
        self._max = max_bytes

    # Blob stores block (disk, Kubo, fetching from peers): they run on worker threads.

    @rpc_method(mutating=True)
    async def put(self, data: str, pin: bool = True) -> dict[str, Any]:
        """Store base64 bytes (a model or a data group); returns its CID."""
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise InvalidParams("data must be base64") from None
        try:
            cid = await trio.to_thread.run_sync(lambda: self._blobs.put(raw, pin=pin))
        except ContentError as e:
            raise RpcError(REJECTED, str(e)) from None
        return {"cid": cid, "size": len(raw)}

    @rpc_method
    async def get(self, cid: str) -> dict[str, Any]:
        """The bytes of a CID (base64), from this node or its peers."""
        try:
            raw = await trio.to_thread.run_sync(self._blobs.get, cid)
        except InvalidCidError as e:
            raise InvalidParams(str(e)) from None
        except ContentError as e:
            raise NotFound(str(e)) from None
        if len(raw) > self._max:
            raise RpcError(REJECTED, f"blob of {len(raw)} bytes exceeds the RPC limit")
        return {"cid": cid, "data": base64.b64encode(raw).decode(), "size": len(raw)}

    @rpc_method
    async def has(self, cid: str) -> bool:
        """Whether this node holds the CID locally."""
        try:
            return await trio.to_thread.run_sync(self._blobs.has, cid)
        except InvalidCidError as e:
            raise InvalidParams(str(e)) from None


class NodeRpc:
    def __init__(
        self, status: Callable[[], dict[str, Any]], peers: Callable[[], list[dict[str, Any]]],
        vote_log: Callable[[], list[tuple[str, str, int]]],
    ) -> None:
        self._status = status
        self._peers = peers
        self._vote_log = vote_log

    @rpc_method
    def status(self) -> dict[str, Any]:
        """Height, state root, peers, consensus round and step, sandbox isolation, mempool."""
        return self._status()

    @rpc_method
    def peers(self) -> list[dict[str, Any]]:
        """Connected peers (after the chain handshake) with their advertised tips."""
        return self._peers()

    @rpc_method
    def recent_votes(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Diagnostics: the last votes this node sent or received, with wall-clock times (ns),
        to measure propagation between nodes on one machine."""
        if type(limit) is not int or limit < 1:
            raise InvalidParams("limit is a positive integer")
        return [{"vote": v, "event": e, "time_ns": t} for v, e, t in self._vote_log()[-limit:]]


