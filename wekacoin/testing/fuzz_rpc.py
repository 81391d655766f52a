"""The fuzzer's RPC target: `Dispatcher.handle(body, token)` with the node's namespaces
(ChainRpc, TaskRpc, TxRpc, BlobRpc, NodeRpc, registered as the daemon does) over a ChainService
on a LevelDB ChainStore holding the scenario's chain. Every answer must be a valid JSON-RPC
response (or nothing, for notifications); an internal error (-32603) is a crash, reported with
the exception the dispatcher logged."""

from __future__ import annotations

import base64
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wekacoin
from wekacoin.consensus.player import Player
from wekacoin.crypto.keys import format_address
from wekacoin.node.chain import ChainService
from wekacoin.node.rpc_api import BlobRpc, ChainRpc, NodeRpc, TaskRpc, TxRpc
from wekacoin.rpc.protocol import INTERNAL_ERROR, Dispatcher
from wekacoin.testing.fuzz_corpus import Scenario
from wekacoin.testing.fuzz_json import mutate_json
from wekacoin.testing.fuzz_resign import resigned_tx
from wekacoin.testing.fuzz_targets import Case, Finding, NodeParts, case_rng, finding_of
from wekacoin.types import codec

RPC_TOKEN = "fuzz-token"
RPC_MAX_RESPONSE = 8 * 2**20


class _Captured(logging.Handler):
    """The exceptions the dispatcher logs as internal errors."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


@dataclass
class _NodeView:
    """What NodeRpc reports in the harness: the ledger and the player (there is no network)."""

    chain: ChainService
    player: Player
    relayed: deque = field(default_factory=lambda: deque(maxlen=100))
    vote_log: deque = field(default_factory=lambda: deque(maxlen=4_096))

    def status(self) -> dict[str, Any]:
        state = self.chain.state
        consensus = self.player.status()
        return {"version": wekacoin.__version__, "chain_id": self.chain.config.chain_id,
                "height": state.height, "block_hash": state.get_block_hash().hex(),
                "state_root": state.root().hex(), "peers": 0, "mempool": len(self.chain.mempool),
                "consensus": {"round": consensus.round, "period": consensus.period,
                              "step": consensus.step}}

    def peers(self) -> list[dict[str, Any]]:
        return []


class RpcTarget:
    name = "rpc"

    def __init__(self, scenario: Scenario, workdir: Path) -> None:
        self.scenario = scenario
        self.parts = NodeParts(scenario, workdir)
        self.dispatcher: Dispatcher | None = None
        self.blob_cid = ""
        self.requests: list[dict[str, Any]] = []
        self.captured = _Captured()
        self._log = logging.getLogger("wekacoin.rpc")
        self._log_state = (self._log.level, self._log.propagate)
        self._log.addHandler(self.captured)
        self._log.setLevel(logging.ERROR)
        self._log.propagate = False
        self.reset()
        self.requests = self._valid_requests()
        served = {r["method"] for r in self.requests}
        assert self.dispatcher is not None
        missing = set(self.dispatcher.methods) - served
        assert not missing, f"no valid request for {sorted(missing)}"

    def reset(self) -> None:
        chain, blobs, admissions, player = self.parts.services()
        view = _NodeView(chain, player)
        for vote in self.scenario.votes[:20]:
            view.vote_log.append((codec.hash_of(vote).hex()[:16], "received", 1))
        self.blob_cid = blobs.put(b"a fuzzed node's blob")
        d = Dispatcher(RPC_TOKEN, RPC_MAX_RESPONSE)
        d.register("chain", ChainRpc(chain))
        d.register("tasks", TaskRpc(chain))
        d.register("tx", TxRpc(chain, admissions, self.parts.now, view.relayed.append))
        d.register("blobs", BlobRpc(blobs, RPC_MAX_RESPONSE * 3 // 4))
        d.register("node", NodeRpc(view.status, view.peers, lambda: list(view.vote_log)))
        self.dispatcher = d

    def _valid_requests(self) -> list[dict[str, Any]]:
        s = self.scenario
        chain = s.chain
        tx_ids = [codec.sha256(tx.payload).hex() for b in chain.blocks[-3:] for tx in b.txs]
        addresses = [format_address(k.address) for k in chain.keys]
        calls: list[tuple[str, Any]] = [
            ("chain.info", []), ("chain.head", None), ("chain.block", {"height": 1}),
            ("chain.block", {"height": chain.height, "full": False}),
            ("chain.block", {"hash": chain.blocks[-1].hash.hex()}), ("chain.block", [3]),
            *(("chain.tx", {"id": i}) for i in tx_ids),
            ("chain.tx", [codec.sha256(s.tip_txs[0].payload).hex()]),
            *(("chain.account", {"address": a}) for a in addresses[:6]),
            ("tasks.list", {}), ("tasks.list", {"open_only": True}),
            *(("tasks.get", {"task_id": i}) for i in (1, 2, 3, 4)),
            *(("tx.submit", {"tx": codec.encode(tx).hex()}) for tx in s.tip_txs),
            ("tx.pending", {}), ("tx.pending", {"address": addresses[0]}),
            ("blobs.put", {"data": base64.b64encode(b"model bytes").decode(), "pin": False}),
            ("blobs.get", {"cid": self.blob_cid}), ("blobs.has", [self.blob_cid]),
            ("node.status", []), ("node.peers", {}), ("node.recent_votes", {"limit": 5}),
        ]
        out = []
        for i, (method, params) in enumerate(calls):
            request: dict[str, Any] = {"jsonrpc": "2.0", "id": i, "method": method}
            if params is not None:
                request["params"] = params
            out.append(request)
        return out

    def describe(self, case: Case) -> str:
        """The methods a request calls, as far as it parses."""
        try:
            request = json.loads(case.data)
        except (ValueError, RecursionError):
            return "an unparsable request"
        calls = request if isinstance(request, list) else [request]
        methods = sorted({c["method"] for c in calls if isinstance(c, dict)
                          and isinstance(c.get("method"), str)})
        return "rpc " + (", ".join(m[:40] for m in methods[:5]) or "no method")

    def case(self, seed: int, index: int) -> Case:
        rng = case_rng(self.name, seed, index)
        token = rng.choices((RPC_TOKEN, None, "fuzz-tokem"), (6, 2, 1))[0]
        r = rng.random()
        if r < 0.03:
            return Case(self.name, json.dumps(rng.choice(self.requests)).encode(), token)
        if r < 0.2:
            tx = rng.choice(self.scenario.tip_txs)
            resigned = resigned_tx(rng, self.scenario, tx)
            if resigned is not None:
                request = {"jsonrpc": "2.0", "id": index, "method": "tx.submit",
                           "params": {"tx": resigned.hex()}}
                return Case(self.name, json.dumps(request).encode(), token)
        request, donor = rng.choice(self.requests), rng.choice(self.requests)
        if r < 0.27:
            batch = [rng.choice(self.requests) for _ in range(rng.choice((1, 2, 5, 101)))]
            return Case(self.name, mutate_json(rng, batch, donor), token)
        if r < 0.4:  # the whole request: envelope, id, method
            return Case(self.name, mutate_json(rng, request, donor), token)
        if r < 0.55:  # another method's parameters
            request = {**request, "method": rng.choice(self.requests)["method"]}
        request.setdefault("params", {})
        return Case(self.name, mutate_json(rng, request, donor, ("params",)), token)

    async def check(self, case: Case) -> Finding | None:
        assert self.dispatcher is not None
        self.captured.errors.clear()
        try:
            out = await self.dispatcher.handle(case.data, case.token)
        except Exception as e:  # noqa: BLE001
            return finding_of(e)
        problem = response_problem(case.data, out)
        if problem == "internal error":
            if self.captured.errors:
                return finding_of(self.captured.errors[0])
            return Finding("InternalError", "wekacoin/rpc/protocol.py", "no exception logged")
        if problem is not None:
            answer = (out or b"").decode(errors="replace")
            return Finding("InvalidResponse", problem, answer[:2_000])
        return None

    def close(self) -> None:
        self._log.removeHandler(self.captured)
        self._log.setLevel(self._log_state[0])
        self._log.propagate = self._log_state[1]
        self.parts.close()


def _is_notification(request: Any) -> bool:
    return isinstance(request, dict) and "id" not in request


def response_problem(body: bytes, out: bytes | None) -> str | None:
    """What makes `out` no valid JSON-RPC answer to `body` (None if it is one)."""
    try:
        request = json.loads(body)
        parsed = True
    except (ValueError, RecursionError):
        request, parsed = None, False
    if out is None:
        if parsed and (_is_notification(request) or (
                isinstance(request, list) and request and all(map(_is_notification, request)))):
            return None
        return "no answer to a request"
    try:
        response = json.loads(out)
    except ValueError:
        return "the answer is not JSON"
    if isinstance(response, list):
        if not response or not isinstance(request, list):
            return "an array answer to a request that is no batch"
        problems = [_response_object_problem(r) for r in response]
        return next((p for p in problems if p is not None), None)
    problem = _response_object_problem(response)
    if problem is None and isinstance(request, dict) and request.get("jsonrpc") == "2.0":
        rid = request.get("id")
        if (isinstance(rid, (str, int)) and not isinstance(rid, bool)
                and response.get("id") != rid and "method" in request):
            return "the answer's id is not the request's"
    return problem


def _response_object_problem(r: Any) -> str | None:
    if not isinstance(r, dict) or r.get("jsonrpc") != "2.0" or "id" not in r:
        return "not a response object"
    if set(r) - {"jsonrpc", "id", "result", "error"} or ("result" in r) == ("error" in r):
        return "a response has exactly one of result and error"
    error = r.get("error")
    if error is not None:
        if (not isinstance(error, dict) or type(error.get("code")) is not int
                or not isinstance(error.get("message"), str)
                or set(error) - {"code", "message", "data"}):
            return "a malformed error object"
        if error["code"] == INTERNAL_ERROR:
            return "internal error"
    return None
