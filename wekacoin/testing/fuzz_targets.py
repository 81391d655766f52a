"""The fuzzer's targets (bench/fuzz.py). Each makes its inputs from (seed, index) alone, so any
input can be made again, and checks one input at a time, returning a `Finding` or None:

    decode   `codec.decode(T, data)` for every record type T (and `decode_trusted` for the
             consensus checkpoint): only DecodeError may escape, and what decodes must be the
             canonical encoding of what it decoded to.
    gossip   `Validators.tx/vote/proposal/ranking` on a ChainService over a LevelDB ChainStore
             holding the scenario's chain, and a started Player: any exception is a crash, the
             answer must be a verdict.
    rpc      the node's JSON-RPC dispatcher (fuzz_rpc.py).

`reset` drops the state a target keeps between inputs (mempool, verifier caches, blobs); the
runner (fuzz_run.py) calls it at the start of every segment of the stream.
"""

from __future__ import annotations

import inspect
import random
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import wekacoin
from wekacoin.chain.blocks import apply_block
from wekacoin.chain.genesis import genesis_state
from wekacoin.consensus.events import Started
from wekacoin.consensus.player import Player
from wekacoin.consensus.verify import Verifier
from wekacoin.content.embedded import EmbeddedBlobStore
from wekacoin.evaluation.sandbox import ForkServerSandbox
from wekacoin.net.api import Accept, Ignore, Reject, Topic
from wekacoin.node.admission import Admissions
from wekacoin.node.chain import ChainService
from wekacoin.node.evaluation import EvaluationService, SandboxPool
from wekacoin.node.gossip import Validators
from wekacoin.store import ChainStore
from wekacoin.testing.fuzz_corpus import Scenario, decode_corpus, record_types
from wekacoin.testing.fuzz_mutate import Parsed, mutate_cbor
from wekacoin.testing.fuzz_resign import (
    resigned_proposal,
    resigned_ranking,
    resigned_tx,
    resigned_vote,
)
from wekacoin.types import codec
from wekacoin.types.codec import DecodeError

SLOW_S = 2.0
"""An input that takes longer than this is reported (a denial of service)."""
RPC_TOKEN = "fuzz-token"
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
            Topic.TX: resigned_tx, Topic.VOTE: resigned_vote,
            Topic.PROPOSAL: resigned_proposal, Topic.RANKING: resigned_ranking}
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
