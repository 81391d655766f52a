"""The fuzzer's seed corpus: valid objects made by the project's own code.

`build_scenario()` walks a LocalChain through three task lifecycles (one settled, one being
ranked, one in training) and a fourth task just published, with transfers and stake changes
on the way, then signs at the tip what a peer could send next: a transaction of every kind,
votes of every committee step, a proposal, a certificate, rankings, the net messages and a
consensus checkpoint. Everything is deterministic: the keys are `dev_key`s, ed25519 and the
ECVRF are deterministic, so every worker process builds the same bytes.

`decode_corpus(scenario)` maps each record type the codec can decode (every dataclass of
wekacoin.types, the consensus messages and checkpoint, the net messages) to encodings of
real instances: the objects above and every record nested in them.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wekacoin.chain.tasks import ready_height, split_height, upload_end
from wekacoin.chain.transactions import verify_tx
from wekacoin.consensus.actions import AssembleBlock, Persist
from wekacoin.consensus.assemble import assemble_block
from wekacoin.consensus.checkpoint import Checkpoint
from wekacoin.consensus.events import BlockAssembled, DeadlineReached, Started
from wekacoin.consensus.messages import (
    FINAL_STEP,
    Certificate,
    ProposalBody,
    UnverifiedProposal,
    UnverifiedVote,
    VoteBody,
    sign_proposal,
    sign_vote,
)
from wekacoin.consensus.player import Player
from wekacoin.consensus.verify import RoundContext, Verifier, step_committee, verify_vote
from wekacoin.crypto.keys import KeyPair
from wekacoin.net.messages import (
    BlobRequest,
    BlockRange,
    BlockRangeRequest,
    Hello,
    PeerAddrs,
    PeersRequest,
    SyncedBlock,
)
from wekacoin.sortition import Role, compute_block_seed, select, sortition_alpha
from wekacoin.testing.certify import certify_block
from wekacoin.testing.chain import FAKE_BLOB_SIZE, FAST_PARAMS, LocalChain, TaskData, fake_cid
from wekacoin.testing.vectors import vector_objects
from wekacoin.types import codec
from wekacoin.types.block import Block
from wekacoin.types.ranking import Outcome, SignedRanking
from wekacoin.types.tx import RevealModel, RevealTest, SubmitModel, Transfer, Tx, TxBody, Unstake

PARAMS = dataclasses.replace(FAST_PARAMS, tau_evaluators=100)
"""A committee of ~100 expected sub-users: every validator sits on every evaluation committee."""

RECORD_MODULES = (
    "wekacoin.types.tx", "wekacoin.types.block", "wekacoin.types.ranking",
    "wekacoin.types.genesis", "wekacoin.types.ledger", "wekacoin.consensus.messages",
    "wekacoin.consensus.checkpoint", "wekacoin.net.messages",
)
VECTORS_FILE = Path(__file__).resolve().parents[2] / "tests" / "vectors" / "encoding.json"

RESULTS = {1: (Outcome.SCORED, 900_000, 10), 2: (Outcome.SCORED, 950_000, 10),
           3: (Outcome.INVALID, 0, 0)}


@dataclass
class Scenario:
    chain: LocalChain
    certificates: list[Certificate]
    """certificates[i] decided chain.blocks[i] (FINAL)."""
    tip_txs: list[Tx]
    """One admissible transaction per sender at the tip (transfer, stake, unstake, publish,
    submit, training reveal)."""
    votes: list[UnverifiedVote]
    """Valid votes of the round after the tip, every step kind, for the proposal and the
    empty block."""
    proposal: UnverifiedProposal
    certificate: Certificate
    """The final votes for `proposal`'s block: a real quorum."""
    rankings: list[SignedRanking]
    """Valid rankings, by the seated validators, of the task being ranked at the tip."""
    checkpoint: bytes
    """A validator's consensus checkpoint after proposing and voting in the tip's round."""
    extra: list[Any] = field(default_factory=list)
    """Other records worth a place in the corpus (a block with rankings and transactions,
    the net messages, the encoding vectors' objects)."""
    ranked_task: int = 2
    training_task: int = 3

    @property
    def genesis_hash(self) -> bytes:
        return self.chain.genesis_hash

    @property
    def keys(self) -> list[KeyPair]:
        return self.chain.keys

    def key_for(self, public_key: bytes) -> KeyPair | None:
        return next((k for k in self.chain.keys if k.public_key == public_key), None)


def _commit(chain: LocalChain, certificates: list[Certificate], txs: Sequence[Tx] = (),
            rankings: Sequence[SignedRanking] = ()) -> Block:
    state = chain.state
    block = chain.commit(list(txs), tuple(rankings))
    certificates.append(certify_block(state, block, chain.keys[: chain.validators]))
    return block


def _advance_to(chain: LocalChain, certificates: list[Certificate], height: int) -> None:
    while chain.height < height:
        _commit(chain, certificates)


def _training(chain: LocalChain, task_id: int, data: TaskData) -> Tx:
    task = chain.state.get_existing_task(task_id)
    return chain.tx(chain.keys[4], data.reveal_training(task_id, task.test_groups))


def build_scenario() -> Scenario:
    chain = LocalChain(params=PARAMS)
    certs: list[Certificate] = []
    keys = chain.keys
    supplier, trainers = keys[4], keys[5:8]
    _commit(chain, certs, [chain.tx(keys[0], Transfer(keys[6].address, 5_000)),
                           chain.tx(keys[5], chain.stake_body(keys[5], 2_000)),
                           chain.tx(keys[2], Unstake(10))])
    specs: dict[int, TaskData] = {}
    models = {t.address: fake_cid(f"fuzz-model-{i}") for i, t in enumerate(trainers)}

    def run_task(task_id: int, label: str, settle: bool) -> None:
        spec, data = chain.task_spec(label=label)
        specs[task_id] = data
        _commit(chain, certs, [chain.tx(supplier, spec)])
        task = chain.state.get_existing_task(task_id)
        _advance_to(chain, certs, split_height(task, chain.params))
        _commit(chain, certs, [_training(chain, task_id, data)])
        _commit(chain, certs, [
            chain.tx(t, SubmitModel(task_id, chain.commitment_for(t, models[t.address]), 900_000))
            for t in trainers])
        task = chain.state.get_existing_task(task_id)
        _advance_to(chain, certs, task.spec.tbh - 1)
        test_reveal = RevealTest(task_id, data.reveals(task.test_groups))
        _commit(chain, certs, [chain.tx(supplier, test_reveal)])
        _commit(chain, certs, [chain.tx(t, RevealModel(task_id, models[t.address], FAKE_BLOB_SIZE))
                               for t in trainers])
        task = chain.state.get_existing_task(task_id)
        _advance_to(chain, certs, upload_end(task, chain.params))
        if settle:
            rankings = chain.rankings(task_id, RESULTS, evaluators=(0, 1, 2, 3))
            _commit(chain, certs, rankings=rankings)
            _advance_to(chain, certs, ready_height(task, chain.params))

    run_task(1, "fuzz-settled", settle=True)
    assert chain.state.get_settlement(1) is not None
    # Task 3 trains (published with a far test release) while task 2 runs its course.
    far_spec, far_data = chain.task_spec(label="fuzz-training", tbh=chain.height + 200)
    specs[3] = far_data
    ranked_task = 2
    spec2, data2 = chain.task_spec(label="fuzz-ranked", tbh=chain.height + 12)
    specs[2] = data2
    _commit(chain, certs, [chain.tx(supplier, spec2)])
    _commit(chain, certs, [chain.tx(supplier, far_spec)])
    t2, t3 = chain.state.get_existing_task(2), chain.state.get_existing_task(3)
    _advance_to(chain, certs, max(split_height(t2, chain.params), split_height(t3, chain.params)))
    _commit(chain, certs, [_training(chain, 2, data2)])
    _commit(chain, certs, [_training(chain, 3, far_data)])
    _commit(chain, certs, [
        chain.tx(t, SubmitModel(2, chain.commitment_for(t, models[t.address]), 900_000))
        for t in trainers])
    t2 = chain.state.get_existing_task(2)
    _advance_to(chain, certs, t2.spec.tbh - 1)
    _commit(chain, certs, [chain.tx(supplier, RevealTest(2, data2.reveals(t2.test_groups)))])
    _commit(chain, certs, [
        chain.tx(t, RevealModel(2, models[t.address], FAKE_BLOB_SIZE)) for t in trainers[:2]
    ])
    end = upload_end(chain.state.get_existing_task(2), chain.params)
    _advance_to(chain, certs, end - 2)
    spec4, data4 = chain.task_spec(label="fuzz-published")
    specs[4] = data4
    _commit(chain, certs, [chain.tx(supplier, spec4)])  # task 4: the split is drawn at `end`
    _advance_to(chain, certs, end)
    assert len(certs) == chain.height
    state = chain.state
    assert split_height(state.get_existing_task(4), chain.params) == chain.height

    # -- what a peer could send next --
    spec5, _ = chain.task_spec(label="fuzz-next")
    tip_txs = [
        chain.tx(keys[0], Transfer(keys[7].address, 1_234)),
        chain.tx(keys[1], chain.stake_body(keys[1], 3_000)),
        chain.tx(keys[2], Unstake(100)),
        chain.tx(keys[3], spec5),
        chain.tx(trainers[0], SubmitModel(3, chain.commitment_for(trainers[0], "bafy-x"), 1)),
        _training(chain, 4, data4),
    ]
    rankings = list(chain.rankings(ranked_task, RESULTS, evaluators=(0, 1, 2, 3)))
    assert rankings
    ctx = RoundContext(state, chain.blocks[-1].header.time_ms)
    proposal = _proposal(chain, ctx, tip_txs, tuple(rankings))
    block = proposal.block
    assert len(block.txs) == len(tip_txs) and block.meta.rankings, "the tip's messages are valid"
    votes = _votes(chain, ctx, block.hash)
    checkpoint = _checkpoint(chain, ctx, block, tuple(rankings))
    certificate = certify_block(state, block, keys[:4])
    built, _ = chain.build(tip_txs[:3], tuple(rankings))
    tip = chain.blocks[-1]
    extra: list[Any] = [
        built,
        Hello(state.config.chain_id, chain.genesis_hash, state.height, tip.hash, "0.1.0"),
        BlockRangeRequest(1, 64),
        PeersRequest(4001, 16),
        PeerAddrs((
            "/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWDWR8RgzJKtU9CaYwEaJjkdh17e8NDWiL3T4D26gm3aMH",
        )),
        BlockRange(tuple(SyncedBlock(codec.encode(b), codec.encode(c))
                         for b, c in list(zip(chain.blocks, certs, strict=True))[-3:])),
        BlobRequest(fake_cid("fuzz-blob")),
        ProposalBody(ctx.round, 0, block.hash),
        verify_tx(tip_txs[0], chain.genesis_hash),
        verify_vote(votes[0], ctx),
        *(obj for _, obj in vector_objects()),
        *(state.get_existing_task(i) for i in (1, 2, 3, 4)),
        *(state.get_submission(i) for i in range(1, 7)),
        state.get_settlement(1), state.tip, state.get_account(keys[0].address),
        state.get_bond(keys[5].address), state.get_bond(keys[1].address),
        *(state.get_ranking(1, k.public_key) for k in keys[:4]),
    ]
    return Scenario(chain, certs, tip_txs, votes, proposal, certificate, rankings, checkpoint,
                    [x for x in extra if x is not None], ranked_task, 3)


def _proposal(chain: LocalChain, ctx: RoundContext, txs: list[Tx],
              rankings: tuple[SignedRanking, ...]) -> UnverifiedProposal:
    state = ctx.state
    alpha = sortition_alpha(state.tip.seed, Role.PROPOSER, ctx.round, 0)
    for key in chain.keys[: chain.validators]:
        seat = select(key, alpha, state.get_weight(key.public_key), state.tip.total_weight,
                      state.params.tau_proposer)
        if seat is None:
            continue
        request = AssembleBlock(ctx.round, 0, key.public_key, compute_block_seed(seat.output),
                                seat.proof, rankings)
        vtxs = [verify_tx(t, chain.genesis_hash) for t in txs]
        block = assemble_block(state, request, vtxs, ctx.tip_time_ms + 1)
        return sign_proposal(key, chain.genesis_hash, 0, block)
    raise AssertionError("no validator is a proposer in period 0")


def _votes(chain: LocalChain, ctx: RoundContext, value: bytes) -> list[UnverifiedVote]:
    state = ctx.state
    empty = Verifier().empty_block(ctx)[0].hash
    out = []
    for step in (1, 2, 3, 4, 5, FINAL_STEP):
        role, tau, _ = step_committee(state.params, step)
        alpha = sortition_alpha(state.tip.seed, role, ctx.round, 0, step)
        for i, key in enumerate(chain.keys[: chain.validators]):
            seat = select(key, alpha, state.get_weight(key.public_key), state.tip.total_weight, tau)
            if seat is None:
                continue
            body = VoteBody(ctx.round, 0, step, ctx.prev_hash, empty if i % 2 else value,
                            key.public_key, seat.proof)
            out.append(sign_vote(key, chain.genesis_hash, body))
    return out


def _checkpoint(chain: LocalChain, ctx: RoundContext, block: Block,
                rankings: tuple[SignedRanking, ...]) -> bytes:
    """Run a validator's player through proposing and the first vote; its last Persist."""
    proposer = block.header.proposer
    key = next(k for k in chain.keys if k.public_key == proposer)
    player = Player([key], Verifier())
    params = ctx.params
    actions = player.handle(Started(ctx.state, ctx.tip_time_ms, None, 0))
    actions += player.handle(BlockAssembled(0, block, 1))
    actions += player.handle(DeadlineReached(params.lambda_priority_ms + params.lambda_stepvar_ms))
    persisted = [a.checkpoint for a in actions if isinstance(a, Persist)]
    assert persisted and codec.decode_trusted(Checkpoint, persisted[-1]).votes
    return persisted[-1]


# -- the decode target's corpus ------------------------------------------------------------


def record_types() -> dict[str, Any]:
    """Every record type the codec can decode, by name, and the transaction body union."""
    out: dict[str, Any] = {}
    for name in RECORD_MODULES:
        module = importlib.import_module(name)
        for attr, value in sorted(vars(module).items()):
            if not (isinstance(value, type) and dataclasses.is_dataclass(value)
                    and value.__module__ == name):
                continue
            try:
                codec._decoder_for(value)
            except TypeError:
                continue  # holds something the codec does not encode (a State): never on the wire
            out[attr] = value
    out["TxBody"] = TxBody
    return out


def _records(obj: Any) -> Iterator[Any]:
    """`obj` and every record nested in it."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        yield obj
        for f in dataclasses.fields(obj):  # a Tx's decoded `unsigned` too
            yield from _records(getattr(obj, f.name))
    elif isinstance(obj, tuple):
        for item in obj:
            yield from _records(item)


def decode_corpus(s: Scenario) -> dict[str, list[bytes]]:
    """Encodings of real instances of every record type (`record_types`), by type name."""
    types = record_types()
    by_class = {cls: name for name, cls in types.items() if isinstance(cls, type)}
    roots: list[Any] = [
        s.chain.genesis, *s.chain.blocks, *s.certificates, *s.tip_txs, *s.votes, s.proposal,
        s.certificate, *s.rankings, codec.decode_trusted(Checkpoint, s.checkpoint), *s.extra,
    ]
    corpus: dict[str, set[bytes]] = {name: set() for name in types}
    for root in roots:
        for record in _records(root):
            name = by_class.get(type(record))
            if name is not None:
                corpus[name].add(codec.encode(record))
            if type(record) in typing.get_args(TxBody):
                corpus["TxBody"].add(codec.encode(record))
    for vector in json.loads(VECTORS_FILE.read_text())["vectors"]:
        corpus[vector["type"]].add(bytes.fromhex(vector["cbor"]))
    missing = sorted(name for name, found in corpus.items() if not found)
    if missing:
        raise AssertionError(f"no corpus for {missing}")
    return {name: sorted(found, key=lambda b: (len(b), b)) for name, found in corpus.items()}
