"""A chain in a test tube: deterministic keys, a genesis, signed transactions and blocks.

Used by unit tests, property tests and benchmarks to drive the real chain rules without a
network or consensus: `LocalChain.commit(txs)` builds the next block with the real
`build_block`, checks it with the real `apply_block`, and moves the tip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from wekacoin.chain.blocks import apply_block, build_block
from wekacoin.chain.genesis import genesis_state
from wekacoin.chain.rankings import select_evaluator, sign_ranking
from wekacoin.chain.state import State
from wekacoin.chain.tasks import group_commitment, model_commitment, ready_height, upload_end
from wekacoin.chain.transactions import sign_stake, sign_tx, verify_tx
from wekacoin.content.cid import compute_cid
from wekacoin.crypto.keys import KeyPair
from wekacoin.types.block import Block, BlockMeta
from wekacoin.types.genesis import Genesis, GenesisAccount, GenesisStake, Params
from wekacoin.types.metric import Metric, TaskKind
from wekacoin.types.primitives import Hash
from wekacoin.types.ranking import (
    CandidateRanking,
    Outcome,
    RankEntry,
    SignedRanking,
    TaskSettlement,
)
from wekacoin.types.tx import (
    DataSchema,
    GroupReveal,
    PublishTask,
    RevealTraining,
    Stake,
    TaskLimits,
    Tx,
    TxBody,
)

# Local-testnet timing: short windows so a whole task lifecycle fits in a few dozen blocks.
FAST_PARAMS = Params(
    min_training_period=5, test_split_delay=1, training_reveal_window=3, test_reveal_window=3,
    upload_window=3, evaluation_window=2, stake_lookback=3, min_groups=5, settlement_reward=1_000,
    min_participation_fee=10,
)


def dev_key(i: int) -> KeyPair:
    return KeyPair.from_seed(hashlib.sha256(b"wekacoin-test-key" + i.to_bytes(4, "big")).digest())


FAKE_BLOB_SIZE = 1_000
"""The size reveals state for a `fake_cid`."""


def fake_cid(label: str) -> str:
    """A syntactically valid CIDv1 (raw, sha2-256) string for content named `label`."""
    import base64

    digest = hashlib.sha256(label.encode()).digest()
    raw = bytes([0x01, 0x55, 0x12, 0x20]) + digest
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


@dataclass
class TaskData:
    """A supplier's secret side of a published task: group CIDs and nonces."""

    cids: list[str]
    nonces: list[bytes]
    baseline_score: int = 500_000
    baseline_cid: str = ""
    sizes: list[int] | None = None
    """Byte size of each group (None: FAKE_BLOB_SIZE each, for made-up CIDs)."""
    baseline_size: int = FAKE_BLOB_SIZE

    def reveals(self, indices: Iterable[int]) -> tuple[GroupReveal, ...]:
        return tuple(
            GroupReveal(i, self.cids[i], self.size_of(i), self.nonces[i]) for i in sorted(indices)
        )

    def size_of(self, index: int) -> int:
        return FAKE_BLOB_SIZE if self.sizes is None else self.sizes[index]

    def reveal_training(self, task_id: int, test_groups: Collection[int]) -> RevealTraining:
        training = [i for i in range(len(self.cids)) if i not in set(test_groups)]
        return RevealTraining(
            task_id, self.reveals(training), self.baseline_cid, self.baseline_size,
            self.baseline_score,
        )


@dataclass
class LocalChain:
    n_keys: int = 8
    balance: int = 10**12
    stake: int = 10**6
    validators: int = 4
    params: Params = FAST_PARAMS
    keys: list[KeyPair] = field(init=False)
    genesis: Genesis = field(init=False)
    state: State = field(init=False)
    blocks: list[Block] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.keys = [dev_key(i) for i in range(self.n_keys)]
        self.genesis = Genesis(
            chain_id="wekacoin-test", time_ms=0,
            accounts=tuple(GenesisAccount(k.address, self.balance) for k in self.keys),
            stakes=tuple(
                GenesisStake(k.address, self.stake, k.public_key)
                for k in self.keys[: self.validators]
            ),
            params=self.params,
        )
        self.state = genesis_state(self.genesis)
        self.genesis_hash = self.state.config.genesis_hash  # Genesis.hash re-encodes each time
        self._nonces: dict[bytes, int] = {}

    @property
    def height(self) -> int:
        return self.state.height

    def next_nonce(self, key: KeyPair) -> int:
        n = max(self._nonces.get(key.address, 0), self.state.get_account(key.address).nonce)
        self._nonces[key.address] = n + 1
        return n

    def tx(self, key: KeyPair, body: TxBody, *, fee: int = 1, nonce: int | None = None) -> Tx:
        if nonce is None:
            nonce = self.next_nonce(key)
        return sign_tx(key, self.genesis_hash, nonce, fee, body)

    def stake_body(self, key: KeyPair, amount: int, validator: KeyPair | None = None) -> Stake:
        """A Stake by `key`'s account under `validator`'s key (default: its own), with that
        key's proof of possession for this account and chain."""
        return sign_stake(validator or key, self.genesis_hash, key.address, amount)

    def seed_for(self, height: int) -> Hash:
        return Hash(hashlib.sha256(b"test-seed" + height.to_bytes(8, "big")).digest())

    def build(
        self, txs: Sequence[Tx] = (), rankings: tuple[SignedRanking, ...] = (), proposer: int = 0
    ) -> tuple[Block, State]:
        vtxs = [verify_tx(t, self.genesis_hash) for t in txs]
        meta = BlockMeta(seed_proof=None, rankings=tuple(rankings))
        return build_block(
            self.state, vtxs=vtxs, seed=self.seed_for(self.height + 1),
            proposer=self.keys[proposer].public_key, meta=meta, time_ms=self.height + 1,
        )

    def commit(self, txs: Sequence[Tx] = (), rankings: tuple[SignedRanking, ...] = ()) -> Block:
        block, _ = self.build(txs, rankings)
        self.state = apply_block(self.state, block).flattened()
        self.blocks.append(block)
        self._nonces.clear()
        return block

    def advance_to(self, height: int) -> None:
        while self.height < height:
            self.commit()

    # -- task helpers --

    def task_spec(
        self, *, groups: int = 10, tbh: int | None = None, reward: int = 50_000,
        hosting_fee: int = 10_000, participation_fee: int = 100, metric: Metric = Metric.ACCURACY,
        baseline_score: int = 500_000, label: str = "task", blobs: Sequence[bytes] = (),
    ) -> tuple[PublishTask, TaskData]:
        """A task and its secret data; `blobs` gives the groups real bytes (their CIDs and
        sizes), otherwise the CIDs are made up."""
        if blobs:
            groups = len(blobs)
        data = TaskData(
            cids=[compute_cid(b) for b in blobs] or [
                fake_cid(f"{label}/group/{i}") for i in range(groups)
            ],
            nonces=[hashlib.sha256(f"{label}/nonce/{i}".encode()).digest() for i in range(groups)],
            baseline_score=baseline_score, baseline_cid=fake_cid(f"{label}/baseline"),
            sizes=[len(b) for b in blobs] or None,
        )
        kind = TaskKind.REGRESSION if Metric(metric) in (Metric.RMSE, Metric.MAE, Metric.R2) \
            else TaskKind.CLASSIFICATION
        spec = PublishTask(
            title=f"{label} competition", metric=metric,
            schema=DataSchema(kind, ("x0", "x1", "x2"), "y"),
            limits=TaskLimits(max_model_bytes=10**6, eval_time_ms=10_000),
            tbh=tbh if tbh is not None else self.height + 1 + self.params.min_training_period,
            reward=reward, hosting_fee=hosting_fee, participation_fee=participation_fee,
            group_commitments=tuple(
                group_commitment(n, c) for n, c in zip(data.nonces, data.cids, strict=True)
            ),
        )
        return spec, data

    @staticmethod
    def commitment_for(key: KeyPair, cid: str) -> Hash:
        return model_commitment(key.address, cid)

    def ranking(
        self, task_id: int, evaluator: int,
        results: dict[int, tuple[Outcome, int, int]] | None = None, *,
        baseline: tuple[Outcome, int] | None = None,
    ) -> SignedRanking | None:
        """Key `evaluator`'s signed ranking of `task_id` with its real committee credential,
        or None if sortition gave it no seat. `results` maps a submission id to (outcome,
        score, model size); unlisted submissions are INVALID; the baseline defaults to
        SCORED at the supplier's stated score."""
        task = self.state.get_existing_task(task_id)
        key = self.keys[evaluator]
        seat = select_evaluator(key, task, self.state)
        if seat is None:
            return None
        results = results or {}
        entries = tuple(
            RankEntry(sid, *results.get(sid, (Outcome.INVALID, 0, 0))) for sid in task.submissions
        )
        b_outcome, b_score = baseline or (Outcome.SCORED, task.baseline_score)
        ranking = CandidateRanking(task_id, key.public_key, seat.proof, b_outcome, b_score, entries)
        return sign_ranking(key, self.genesis_hash, ranking)

    def rankings(
        self, task_id: int, results: dict[int, tuple[Outcome, int, int]] | None = None, *,
        baseline: tuple[Outcome, int] | None = None, evaluators: tuple[int, ...] = (0, 1, 2),
    ) -> tuple[SignedRanking, ...]:
        """Agreeing rankings by the seated ones of `evaluators`, in block order."""
        signed = [self.ranking(task_id, i, results, baseline=baseline) for i in evaluators]
        seated = (s for s in signed if s is not None)
        return tuple(sorted(seated, key=lambda s: s.ranking.evaluator))

    def settle(
        self, task_id: int, results: dict[int, tuple[Outcome, int, int]] | None = None, *,
        baseline: tuple[Outcome, int] | None = None, evaluators: tuple[int, ...] = (0, 1, 2),
    ) -> TaskSettlement | None:
        """Record agreeing rankings once uploads close, then move to the ready height; the
        chain's record of how the task ended (None if it has not)."""
        self.advance_to(upload_end(self.state.get_existing_task(task_id), self.params))
        rankings = self.rankings(task_id, results, baseline=baseline, evaluators=evaluators)
        self.commit(rankings=rankings)
        self.advance_to(ready_height(self.state.get_existing_task(task_id), self.params))
        return self.state.get_settlement(task_id)
