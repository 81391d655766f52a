"""The fuzzer's targets: the codec's decoders, the node's JSON-RPC dispatcher, the gossip
topic validators. Each makes its inputs from (seed, index) alone, so any input can be made
again, and checks one input at a time:

    decode   `codec.decode(T, data)` for every record type T (and `decode_trusted` for the
             consensus checkpoint): only DecodeError may escape, and what decodes must be the
             canonical encoding of what it decoded to.
    rpc      `Dispatcher.handle(body, token)` with the node's namespaces (ChainRpc, TaskRpc,
             TxRpc, BlobRpc, NodeRpc) over a ChainService on a LevelDB ChainStore holding the
             scenario's chain: every answer must be a valid JSON-RPC response (or nothing, for
             notifications), and an internal error (-32603) is a crash.
    gossip   `Validators.tx/vote/proposal/ranking` on the same kind of ChainService and a
             started Player: any exception is a crash, the answer must be a verdict.

State a target keeps between inputs (mempool, verifier caches, blobs) is dropped by `reset`,
which the runner calls at the start of every segment of SEGMENT indices: the state at an
index depends only on the inputs of its segment before it, whichever worker runs it.
"""

from __future__ import annotations

import base64
import dataclasses
import inspect
import json
import logging
import os
import random
import shutil
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import trio

import wekacoin
from wekacoin.chain.blocks import apply_block, compute_tx_root
from wekacoin.chain.genesis import genesis_state
from wekacoin.consensus.events import Started
from wekacoin.consensus.messages import (
    UnverifiedProposal,
    UnverifiedVote,
    VoteBody,
    sign_proposal,
    sign_vote,
)
from wekacoin.consensus.player import Player
from wekacoin.consensus.verify import Verifier
from wekacoin.content.embedded import EmbeddedBlobStore
from wekacoin.crypto.keys import format_address
from wekacoin.evaluation.sandbox import ForkServerSandbox
from wekacoin.net.api import Accept, Ignore, Reject, Topic
from wekacoin.node.admission import Admissions
from wekacoin.node.chain import ChainService
from wekacoin.node.evaluation import EvaluationService, SandboxPool
from wekacoin.node.gossip import Validators
from wekacoin.node.rpc_api import BlobRpc, ChainRpc, NodeRpc, TaskRpc, TxRpc
from wekacoin.rpc.protocol import INTERNAL_ERROR, Dispatcher
from wekacoin.store import ChainStore
from wekacoin.testing.fuzz_corpus import Scenario, decode_corpus, record_types
from wekacoin.testing.fuzz_mutate import Parsed, mutate_cbor, mutate_json, mutate_typed
from wekacoin.types import codec
from wekacoin.types.block import Block
from wekacoin.types.codec import DecodeError
from wekacoin.types.ranking import CandidateRanking, SignedRanking, ranking_signing_message
from wekacoin.types.tx import Tx, UnsignedTx, signing_message

SEGMENT = 5_000
"""Indices per segment: a target's state is fresh at the start of each."""
SLOW_S = 2.0
"""An input that takes longer than this is reported (a denial of service)."""
RPC_TOKEN = "fuzz-token"
RPC_MAX_RESPONSE = 8 * 2**20
PACKAGE_DIR = Path(wekacoin.__file__).resolve().parent


@dataclass(frozen=True, slots=True)
class Case:
    """One input: what it is fed to (a type name, a topic, "rpc"), its bytes, the RPC token."""

    label: str
    data: bytes
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    """The exception's type, or what is wrong with an answer."""
    where: str
    """The innermost frame in the wekacoin package (file:line function)."""
    detail: str

    @property
    def key(self) -> str:
        return f"{self.kind} at {self.where}"


def finding_of(e: BaseException) -> Finding:
    return Finding(type(e).__name__, _where(e.__traceback__),
                   "".join(traceback.format_exception(e)))


def _where(tb: Any) -> str:
    frames = traceback.extract_tb(tb)
    if not frames:
        return "?"
    ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(PACKAGE_DIR)]
    f = (ours or frames)[-1]
    path = Path(f.filename).resolve()
    if path.is_relative_to(PACKAGE_DIR.parent):
        path = path.relative_to(PACKAGE_DIR.parent)
    return f"{path}:{f.lineno} {f.name}"


def case_rng(target: str, seed: int, index: int) -> random.Random:
    return random.Random(f"{target}:{seed}:{index}")


# -- decode ----------------------------------------------------------------------------------


class DecodeTarget:
    name = "decode"
    TRUSTED = "Checkpoint/trusted"

    def __init__(self, scenario: Scenario) -> None:
        self.types = record_types()
        self.corpus = decode_corpus(scenario)
        self.corpus[self.TRUSTED] = self.corpus["Checkpoint"]
        self.labels = sorted(self.corpus)
        self.everything = [b for label in self.labels for b in self.corpus[label]]
        self.parsed = Parsed()

    def reset(self) -> None:
        pass

    def describe(self, case: Case) -> str:
        return f"decode({case.label})"

    def case(self, seed: int, index: int) -> Case:
        rng = case_rng(self.name, seed, index)
        label = rng.choice(self.labels)
        data = rng.choice(self.corpus[label])
        if rng.random() < 0.02:
            return Case(label, data)
        other = rng.choice(self.corpus[label] if rng.random() < 0.5 else self.everything)
        return Case(label, mutate_cbor(rng, data, other, self.parsed))

    async def check(self, case: Case) -> Finding | None:
        trusted = case.label == self.TRUSTED
        cls = self.types["Checkpoint" if trusted else case.label]
        try:
            obj = (codec.decode_trusted if trusted else codec.decode)(cls, case.data)
            again = None if trusted else codec.encode(obj)
        except DecodeError:
            return None
        except Exception as e:  # noqa: BLE001 - exactly what the fuzzer looks for
            return finding_of(e)
        if again is not None and again != case.data:
            return Finding("NonCanonical", f"wekacoin/types/codec.py decode({case.label})",
                           f"decoded {obj!r} from bytes that are not its encoding")
        return None

    def close(self) -> None:
        pass


# -- a node's services on a store ------------------------------------------------------------


class NodeParts:
    """A LevelDB ChainStore holding the scenario's chain (with its certificates), and fresh
    node services on it for each segment."""

    def __init__(self, scenario: Scenario, workdir: Path) -> None:
        self.scenario = scenario
        self.workdir = workdir
        chain = scenario.chain
        self.store = ChainStore.open(workdir / "chain", chain.genesis)
        if self.store.height == 0:
            state = genesis_state(chain.genesis)
            for block, cert in zip(chain.blocks, scenario.certificates, strict=True):
                state = apply_block(state, block)
                self.store.commit(block, state, codec.encode(cert))
        assert self.store.state().block_hash == chain.state.block_hash
        self.tip_time = chain.blocks[-1].header.time_ms
        self._segment = 0

    def services(self) -> tuple[ChainService, EmbeddedBlobStore, Admissions, Player]:
        self._segment += 1
        blob_dir = self.workdir / "blobs"
        shutil.rmtree(blob_dir, ignore_errors=True)
        blobs = EmbeddedBlobStore(blob_dir, max_blob_size=2**20, quota=16 * 2**20)
        chain = ChainService(self.store, self.scenario.chain.genesis)
        # The sandbox is never started: a training reveal's blobs are never in this store,
        # so the baseline check refuses it before it would need one.
        evaluation = EvaluationService(blobs, SandboxPool([ForkServerSandbox(mode="none")]))
        player = Player([self.scenario.keys[0]], Verifier())
        player.handle(Started(chain.state, self.tip_time, None, self.now()))
        return chain, blobs, Admissions(chain, evaluation), player

    def now(self) -> int:
        return self.tip_time + 1_000

    def close(self) -> None:
        self.store.close()


def _typed(rng: random.Random, cls: Any, obj: Any) -> Any | None:
    """`obj` with one to three type-preserving mutations that still decode as a `cls`, or
    None if a few tries found none."""
    original = codec.to_primitive(obj)
    for _ in range(6):
        tree = original
        for _ in range(rng.choice((1, 1, 2, 3))):
            tree = mutate_typed(rng, tree, original)
        try:
            return codec.from_primitive(cls, tree)
        except DecodeError:
            continue
    return None


def _resigned_tx(rng: random.Random, s: Scenario, tx: Tx) -> bytes | None:
    unsigned = _typed(rng, UnsignedTx, tx.unsigned)
    if unsigned is None:
        return None
    key = s.key_for(unsigned.sender) or s.key_for(tx.unsigned.sender)
    if key is None:
        return None  # a sender nobody here holds the key of
    payload = codec.encode(unsigned)
    return codec.encode(Tx(payload, key.sign(signing_message(s.genesis_hash, payload))))


def _resigned_vote(rng: random.Random, s: Scenario, vote: UnverifiedVote) -> bytes | None:
    body = _typed(rng, VoteBody, vote.body)
    if body is None:
        return None
    key = s.key_for(body.voter) or s.key_for(vote.body.voter)
    if key is None:
        return None  # a sender nobody here holds the key of
    return codec.encode(sign_vote(key, s.genesis_hash, body))


def _resigned_proposal(rng: random.Random, s: Scenario, up: UnverifiedProposal) -> bytes | None:
    """Typed changes anywhere in the proposal; or, half the time, changes to its transactions
    and rankings (each re-signed) with the header's roots made to match, so that the block
    passes the proposer's credential and its header and meets the chain rules."""
    if rng.random() < 0.5:
        mutated = _typed(rng, UnverifiedProposal, up)
        if mutated is None:
            return None
        period, block = mutated.period, mutated.block
    else:
        period, block = up.period, _consistent_block(rng, s, up.block)
    original = up.block.header.proposer
    assert original is not None
    key = s.key_for(block.header.proposer or original) or s.key_for(original)
    if key is None:
        return None  # a sender nobody here holds the key of
    return codec.encode(sign_proposal(key, s.genesis_hash, period, block))


def _consistent_block(rng: random.Random, s: Scenario, block: Block) -> Block:
    txs, rankings = list(block.txs), list(block.meta.rankings)
    for _ in range(rng.choice((1, 1, 2, 3))):
        what = rng.randrange(5)
        if what == 0 and txs:
            i = rng.randrange(len(txs))
            changed = _resigned_tx(rng, s, txs[i])
            if changed is not None:
                txs[i] = codec.decode(Tx, changed)
        elif what == 1:
            changed = _resigned_tx(rng, s, rng.choice(s.tip_txs))
            if changed is not None:
                txs.insert(rng.randint(0, len(txs)), codec.decode(Tx, changed))
        elif what == 2 and txs:
            i = rng.randrange(len(txs))
            txs.insert(rng.randint(0, len(txs)), txs[i]) if rng.random() < 0.5 else txs.pop(i)
        elif what == 3 and rankings:
            i = rng.randrange(len(rankings))
            changed = _resigned_ranking(rng, s, rankings[i])
            if changed is not None:
                rankings[i] = codec.decode(SignedRanking, changed)
        elif rankings:
            i = rng.randrange(len(rankings))
            rankings.insert(i, rankings[i]) if rng.random() < 0.5 else rankings.pop(i)
    meta = dataclasses.replace(block.meta, rankings=tuple(rankings))
    header = dataclasses.replace(block.header, tx_root=compute_tx_root(tuple(txs)),
                                 meta_hash=codec.hash_of(meta))
    return Block(header, tuple(txs), meta)


def _resigned_ranking(rng: random.Random, s: Scenario, signed: SignedRanking) -> bytes | None:
    ranking = _typed(rng, CandidateRanking, signed.ranking)
    if ranking is None:
        return None
    key = s.key_for(ranking.evaluator) or s.key_for(signed.ranking.evaluator)
    if key is None:
        return None  # a sender nobody here holds the key of
    signature = key.sign(ranking_signing_message(s.genesis_hash, ranking))
    return codec.encode(SignedRanking(ranking, signature))


# -- gossip ----------------------------------------------------------------------------------


class GossipTarget:
    name = "gossip"
    TOPICS = (Topic.TX, Topic.VOTE, Topic.PROPOSAL, Topic.RANKING)

    def __init__(self, scenario: Scenario, workdir: Path) -> None:
        self.scenario = scenario
        self.parts = NodeParts(scenario, workdir)
        s = scenario
        block_txs = [tx for block in s.chain.blocks for tx in block.txs]
        self.objects: dict[Topic, list[Any]] = {
            Topic.TX: [*s.tip_txs, *block_txs], Topic.VOTE: list(s.votes),
            Topic.PROPOSAL: [s.proposal], Topic.RANKING: list(s.rankings),
        }
        self.corpus = {t: [codec.encode(o) for o in objs] for t, objs in self.objects.items()}
        self.resign: dict[Topic, Callable[..., bytes | None]] = {
            Topic.TX: _resigned_tx, Topic.VOTE: _resigned_vote,
            Topic.PROPOSAL: _resigned_proposal, Topic.RANKING: _resigned_ranking}
        self.parsed = Parsed()
        self.validators: Validators | None = None

    def reset(self) -> None:
        chain, _, admissions, player = self.parts.services()
        self.validators = Validators(chain, admissions, player, self.parts.now)

    def describe(self, case: Case) -> str:
        return f"Validators.{case.label}"

    def case(self, seed: int, index: int) -> Case:
        rng = case_rng(self.name, seed, index)
        topic = rng.choice(self.TOPICS)
        i = rng.randrange(len(self.corpus[topic]))
        data = self.corpus[topic][i]
        r = rng.random()
        if r < 0.03:
            return Case(topic.value, data)
        if r < 0.4:
            resigned = self.resign[topic](rng, self.scenario, self.objects[topic][i])
            if resigned is not None:
                return Case(topic.value, resigned)
        pool = self.corpus[topic] if rng.random() < 0.7 else self.corpus[rng.choice(self.TOPICS)]
        return Case(topic.value, mutate_cbor(rng, data, rng.choice(pool), self.parsed))

    async def check(self, case: Case) -> Finding | None:
        assert self.validators is not None, "reset() first"
        validate = self.validators.for_topic(Topic(case.label))
        try:
            verdict = validate(case.data)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except Exception as e:  # noqa: BLE001
            return finding_of(e)
        if verdict not in (Accept, Ignore, Reject):
            return Finding("NotAVerdict", f"wekacoin/node/gossip.py Validators.{case.label}",
                           repr(verdict))
        return None

    def close(self) -> None:
        self.parts.close()


# -- rpc -------------------------------------------------------------------------------------


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
            resigned = _resigned_tx(rng, self.scenario, tx)
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


# -- running ---------------------------------------------------------------------------------


@dataclass
class Crash:
    finding: Finding
    index: int
    """The first index that produced it."""
    label: str
    data: bytes
    token: str | None
    count: int = 1


@dataclass
class SegmentResult:
    inputs: int = 0
    seconds: float = 0.0
    crashes: dict[str, Crash] = field(default_factory=dict)
    rss_mib: int = 0
    """Memory of the process that ran the segment, at its end (the most, once merged): the
    state a target keeps grows within a segment only."""

    def merge(self, other: SegmentResult) -> None:
        self.inputs += other.inputs
        self.seconds += other.seconds
        self.rss_mib = max(self.rss_mib, other.rss_mib)
        for key, crash in other.crashes.items():
            mine = self.crashes.get(key)
            if mine is None:
                self.crashes[key] = dataclasses.replace(crash)
            else:
                mine.count += crash.count
                if crash.index < mine.index:
                    mine.index, mine.label, mine.data, mine.token = (
                        crash.index, crash.label, crash.data, crash.token)


async def timed_check(target: Any, case: Case) -> Finding | None:
    """`target.check(case)`, or a Slow finding if it passed but took longer than SLOW_S."""
    t0 = time.perf_counter()
    found = await target.check(case)
    spent = time.perf_counter() - t0
    if found is None and spent > SLOW_S:
        found = Finding("Slow", target.describe(case), f"{spent:.1f} s for one input")
    return found


def _rss_mib() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE") // 2**20


def run_range(target: Any, seed: int, start: int, stop: int,
              on_input: Callable[[int], None] | None = None) -> SegmentResult:
    """Feed inputs [start, stop) to `target`, resetting it at every segment boundary (and at
    `start`, which must be one unless a single input is replayed); `on_input(index)` is
    called before each input is checked."""
    result = SegmentResult()

    async def loop() -> None:
        began = time.perf_counter()
        for index in range(start, stop):
            if index == start or index % SEGMENT == 0:
                target.reset()
            case = target.case(seed, index)
            if on_input is not None:
                on_input(index)
            found = await timed_check(target, case)
            result.inputs += 1
            if found is not None:
                known = result.crashes.get(found.key)
                if known is None:
                    result.crashes[found.key] = Crash(found, index, case.label, case.data,
                                                      case.token)
                else:
                    known.count += 1
        result.seconds = time.perf_counter() - began
        result.rss_mib = _rss_mib()

    trio.run(loop)
    return result


def replay(target: Any, seed: int, index: int) -> tuple[Case, Finding | None, bool]:
    """Input `index` fed to a fresh target, then (if that passes) after the inputs of its
    segment that came before it, as in the campaign. Returns the input, what it found and
    whether it found it alone."""
    case = target.case(seed, index)

    async def one(reset: bool) -> Finding | None:
        if reset:
            target.reset()
        return await timed_check(target, case)

    found = trio.run(one, True)
    if found is not None:
        return case, found, True
    start = index - index % SEGMENT
    if start == index:
        return case, None, False
    run_range(target, seed, start, index)
    return case, trio.run(one, False), False


def make_target(name: str, scenario: Scenario, workdir: Path) -> Any:
    if name == "decode":
        return DecodeTarget(scenario)
    if name == "rpc":
        return RpcTarget(scenario, workdir)
    if name == "gossip":
        return GossipTarget(scenario, workdir)
    raise ValueError(f"no target {name!r}")


TARGETS = ("decode", "rpc", "gossip")
