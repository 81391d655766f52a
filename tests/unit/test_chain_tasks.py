"""The task lifecycle: publication, reveals, submissions, windows, cancellation, and the
attacks of the seed papers."""

import dataclasses
from collections import Counter

import pytest

from wekacoin.chain.blocks import apply_block, compute_tx_root
from wekacoin.chain.context import BlockContext
from wekacoin.chain.errors import (
    CommitmentMismatch,
    DuplicateSubmission,
    InsufficientFunds,
    InvalidBlockTx,
    InvalidField,
    LimitExceeded,
    NotSupplier,
    ParticipationFeeTooLow,
    UnknownTask,
    WrongPhase,
)
from wekacoin.chain.tasks import (
    Phase,
    compute_phase,
    compute_test_groups,
    evaluation_groups,
    ready_height,
    reveal_test_end,
    split_height,
    training_reveal_deadline,
    upload_end,
)
from wekacoin.chain.transactions import apply_tx, sign_tx, verify_tx
from wekacoin.testing.chain import FAST_PARAMS, LocalChain, fake_cid
from wekacoin.types.ledger import TaskStatus
from wekacoin.types.metric import Metric, TaskKind
from wekacoin.types.ranking import Outcome, Payment, Resolution
from wekacoin.types.tx import (
    DataSchema,
    RevealModel,
    RevealTest,
    RevealTraining,
    SubmitModel,
    TaskLimits,
    Transfer,
)


class Competition:
    """A chain with one task, walked through its lifecycle step by step."""

    def __init__(self, params=FAST_PARAMS, **spec):
        self.chain = LocalChain(params=params)
        self.supplier = self.chain.keys[4]
        self.trainers = self.chain.keys[5:8]
        self.spec, self.data = self.chain.task_spec(**spec)
        self.chain.commit([self.chain.tx(self.supplier, self.spec)])
        self.task_id = 1

    @property
    def task(self):
        return self.chain.state.get_task(self.task_id)

    @property
    def params(self):
        return self.chain.params

    def draw_split(self):
        """Move to the block that draws the test split: the next block may reveal training."""
        self.chain.advance_to(split_height(self.task, self.params))
        assert self.task.test_groups

    def training_indices(self):
        return [i for i in range(len(self.data.cids)) if i not in self.task.test_groups]

    def training_reveal(self, baseline_cid=None, baseline_score=None):
        return RevealTraining(
            self.task_id, self.data.reveals(self.training_indices()),
            self.data.baseline_cid if baseline_cid is None else baseline_cid,
            self.data.baseline_size,
            self.data.baseline_score if baseline_score is None else baseline_score,
        )

    def reveal_training(self):
        self.draw_split()
        self.commit(self.supplier, self.training_reveal())

    def submit(self, trainer, cid, score=900_000):
        commitment = self.chain.commitment_for(trainer, cid)
        self.commit(trainer, SubmitModel(self.task_id, commitment, score))

    def submit_all(self, cids, score=900_000):
        """One submission per trainer, all in one block (the shortest training period leaves
        few blocks between the training reveal and tbh)."""
        self.chain.commit([
            self.chain.tx(t, SubmitModel(self.task_id, self.chain.commitment_for(t, cid), score))
            for t, cid in zip(self.trainers, cids, strict=True)
        ])

    def reveal_test(self):
        groups = self.data.reveals(self.task.test_groups)
        self.commit(self.supplier, RevealTest(self.task_id, groups))

    def commit(self, key, body, fee=1):
        self.chain.commit([self.chain.tx(key, body, fee=fee)])

    def attempt(self, key, body, height=None):
        """Apply on a throwaway child of the tip, as the next block would."""
        chain = self.chain
        tx = sign_tx(key, chain.genesis.hash, chain.state.get_account(key.address).nonce, 1, body)
        state = chain.state.child()
        apply_tx(state, verify_tx(tx, chain.genesis.hash),
                 BlockContext(height or chain.height + 1, chain.seed_for(chain.height + 1)))
        return state


@pytest.fixture
def comp():
    return Competition()


# -- publication --


def test_publish_escrows_reward_and_hosting_fee(comp):
    task = comp.task
    assert task.status is TaskStatus.PUBLISHED
    assert task.escrow == comp.spec.reward + comp.spec.hosting_fee
    supplier = comp.chain.state.get_account(comp.supplier.address)
    assert supplier.balance == comp.chain.balance - task.escrow - 1
    assert comp.chain.state.tip.open_tasks == (1,)
    assert task.test_groups == ()  # not drawn yet


def test_test_groups_come_from_the_seed_of_a_later_block(comp):
    """DanKu 5.2: the split is drawn from a block after the one that publishes the task, so
    neither the supplier nor the proposer including the task knows it when the groups are
    committed."""
    split = split_height(comp.task, comp.params)
    assert split == comp.task.published_height + comp.params.test_split_delay
    comp.chain.advance_to(split - 1)
    assert comp.task.test_groups == ()
    comp.chain.commit()
    assert comp.chain.height == split
    seed = comp.chain.blocks[-1].header.seed
    assert comp.task.test_groups == compute_test_groups(seed, comp.task.id, 10, 2)
    publishing = comp.chain.blocks[comp.task.published_height - 1].header
    publishing_seed = publishing.seed
    assert publishing.height == comp.task.published_height
    assert compute_test_groups(publishing_seed, comp.task.id, 10, 2) != comp.task.test_groups
    comp.chain.commit()
    assert comp.task.test_groups == compute_test_groups(seed, comp.task.id, 10, 2)  # drawn once


def test_test_group_draw_is_uniform():
    counts = Counter()
    for s in range(2000):
        counts.update(compute_test_groups(s.to_bytes(32, "big"), 1, 10, 2))
    # Each index is drawn with probability 0.2: 400 expected, sd ~18.
    assert all(320 < counts[i] < 480 for i in range(10)), counts


@pytest.mark.parametrize("change, error, message", [
    (dict(title=""), InvalidField, "title"),
    (dict(metric=Metric.RMSE), InvalidField, "does not apply"),
    (dict(schema=DataSchema(TaskKind.CLASSIFICATION, (), "y")), InvalidField, "feature columns"),
    (dict(schema=DataSchema(TaskKind.CLASSIFICATION, ("a", "y"), "y")), InvalidField, "distinct"),
    (dict(schema=DataSchema(TaskKind.CLASSIFICATION, ("a\n",), "y")), InvalidField, "printable"),
    (dict(group_commitments=(b"x" * 32,) * 3), InvalidField, "data groups"),
    (dict(tbh=3), InvalidField, "test release height"),
    (dict(reward=0), InvalidField, "reward"),
    (dict(reward=2**64 - 1, hosting_fee=1), InvalidField, "below 2\\^64"),  # not InsufficientFunds
    (dict(limits=TaskLimits(10**12, 1000)), LimitExceeded, "model size"),
    (dict(limits=TaskLimits(1000, 0)), LimitExceeded, "evaluation time"),
])
def test_publish_validation(comp, change, error, message):
    spec = dataclasses.replace(comp.spec, **{"tbh": _fresh_tbh(comp), **change})
    with pytest.raises(error, match=message):
        comp.attempt(comp.supplier, spec)


def _fresh_tbh(comp):
    return comp.chain.height + 1 + comp.params.min_training_period


def test_publish_needs_the_escrow(comp):
    spec = dataclasses.replace(comp.spec, reward=comp.chain.balance, tbh=_fresh_tbh(comp))
    with pytest.raises(InsufficientFunds):
        comp.attempt(comp.supplier, spec)


# -- training reveal --


def test_reveal_training_opens_the_task(comp):
    comp.reveal_training()
    assert comp.task.status is TaskStatus.ACTIVE
    assert [g.index for g in comp.task.training_reveals] == comp.training_indices()
    assert comp.task.baseline_cid == comp.data.baseline_cid
    assert comp.task.baseline_score == comp.data.baseline_score
    assert compute_phase(comp.task, comp.chain.height, comp.params) is Phase.TRAINING


def test_reveal_training_waits_for_the_split(comp):
    """The supplier can train and score a baseline only on a split it did not choose: the
    training reveal is refused up to and including the block that draws the split."""
    split = split_height(comp.task, comp.params)
    all_groups = RevealTraining(1, comp.data.reveals(range(10)), comp.data.baseline_cid, 1_000, 1)
    for height in range(comp.chain.height + 1, split + 1):
        with pytest.raises(WrongPhase, match=f"drawn at height {split}"):
            comp.attempt(comp.supplier, all_groups, height=height)
    comp.draw_split()
    comp.attempt(comp.supplier, comp.training_reveal(), height=split + 1)


def test_reveal_training_only_by_the_supplier(comp):
    comp.draw_split()
    with pytest.raises(NotSupplier):
        comp.attempt(comp.trainers[0], comp.training_reveal())


def test_reveal_training_that_does_not_match_is_refused(comp):
    comp.draw_split()
    idx = comp.training_indices()
    reveals = list(comp.data.reveals(idx))
    reveals[0] = dataclasses.replace(reveals[0], cid=fake_cid("other data"))
    body = comp.training_reveal()
    with pytest.raises(CommitmentMismatch, match=f"group {idx[0]}"):
        comp.attempt(comp.supplier, dataclasses.replace(body, groups=tuple(reveals)))
    reveals = list(comp.data.reveals(idx))
    reveals[1] = dataclasses.replace(reveals[1], nonce=b"\x00" * 32)
    with pytest.raises(CommitmentMismatch):
        comp.attempt(comp.supplier, dataclasses.replace(body, groups=tuple(reveals)))


def test_reveal_training_must_be_exactly_the_training_groups(comp):
    comp.draw_split()
    body = comp.training_reveal()
    with pytest.raises(CommitmentMismatch, match="reveal exactly"):  # the test groups included
        comp.attempt(comp.supplier, dataclasses.replace(body, groups=comp.data.reveals(range(10))))
    with pytest.raises(CommitmentMismatch):
        comp.attempt(comp.supplier, dataclasses.replace(
            body, groups=comp.data.reveals(comp.training_indices()[1:])))


def test_reveal_training_needs_a_baseline_cid(comp):
    comp.draw_split()
    with pytest.raises(InvalidField, match="baseline CID"):
        comp.attempt(comp.supplier, comp.training_reveal(baseline_cid="not-a-cid"))
    with pytest.raises(InvalidField, match="baseline CID"):
        comp.attempt(comp.supplier, comp.training_reveal(baseline_cid=""))


def test_reveal_for_an_unknown_task(comp):
    with pytest.raises(UnknownTask):
        comp.attempt(comp.supplier, RevealTraining(9, (), comp.data.baseline_cid, 1_000, 1))


def test_unrevealed_training_cancels_the_task_and_burns_the_hosting_fee(comp):
    deadline = training_reveal_deadline(comp.task, comp.params)
    assert deadline == comp.task.published_height + comp.params.test_split_delay \
        + comp.params.training_reveal_window
    comp.chain.advance_to(deadline - 1)
    comp.attempt(comp.supplier, comp.training_reveal(), height=deadline)  # still open
    comp.chain.advance_to(deadline)
    assert comp.task.status is TaskStatus.PUBLISHED
    with pytest.raises(WrongPhase, match="closed"):
        comp.attempt(comp.supplier, comp.training_reveal(), height=deadline + 1)
    balance = comp.chain.state.get_account(comp.supplier.address).balance
    comp.chain.commit()
    assert comp.task.status is TaskStatus.CANCELLED
    assert comp.task.escrow == 0 and comp.task.settled_height == deadline + 1
    assert comp.chain.state.get_account(comp.supplier.address).balance == balance + comp.spec.reward
    assert comp.chain.state.tip.burned == comp.spec.hosting_fee
    assert comp.chain.state.tip.open_tasks == ()
    record = comp.chain.state.get_settlement(1)
    assert record.resolution is Resolution.CANCELLED and record.height == deadline + 1
    assert record.payments == (Payment(comp.supplier.address, comp.spec.reward),)
    assert record.burned == comp.spec.hosting_fee and record.minted == 0
    assert record.winner == 0 and record.entries == () and record.evaluators == ()
    assert record.baseline_outcome is Outcome.UNEVALUATED


# -- submissions --


def test_submission_before_training_reveal_is_refused(comp):
    with pytest.raises(WrongPhase, match="awaiting training"):
        comp.attempt(comp.trainers[0], SubmitModel(1, b"c" * 32, 1))


def test_submission_pays_the_participation_fee_into_escrow(comp):
    comp.reveal_training()
    escrow = comp.task.escrow
    comp.submit(comp.trainers[0], fake_cid("m0"))
    assert comp.task.escrow == escrow + comp.spec.participation_fee
    sub = comp.chain.state.get_submission(comp.task.submissions[0])
    assert sub.trainer == comp.trainers[0].address and sub.model_cid is None


def test_submission_after_tbh_is_refused(comp):
    """DanKu 4.1 / paper III-B: nobody trains on the released test set."""
    comp.reveal_training()
    comp.chain.advance_to(comp.spec.tbh - 1)
    with pytest.raises(WrongPhase, match="takes no submissions"):
        comp.attempt(comp.trainers[0], SubmitModel(1, b"c" * 32, 1), height=comp.spec.tbh)
    comp.attempt(comp.trainers[0], SubmitModel(1, b"c" * 32, 1), height=comp.spec.tbh - 1)


def test_duplicate_commitment_by_the_same_trainer(comp):
    comp.reveal_training()
    comp.submit(comp.trainers[0], fake_cid("m0"))
    with pytest.raises(DuplicateSubmission):
        commitment = comp.chain.commitment_for(comp.trainers[0], fake_cid("m0"))
        comp.attempt(comp.trainers[0], SubmitModel(1, commitment, 1))


def test_submission_limit():
    comp = Competition(params=dataclasses.replace(FAST_PARAMS, max_submissions_per_task=1))
    comp.reveal_training()
    comp.submit(comp.trainers[0], fake_cid("m0"))
    with pytest.raises(LimitExceeded):
        comp.attempt(comp.trainers[1], SubmitModel(1, b"c" * 32, 1))


def _propose(chain, txs):
    """What a node does with a proposed block carrying `txs`: apply_block on the tip (the
    block claims the root of an empty block; a refused transaction is found before that)."""
    block, _ = chain.build([])
    header = dataclasses.replace(block.header, tx_root=compute_tx_root(tuple(txs)))
    return apply_block(chain.state, dataclasses.replace(block, header=header, txs=tuple(txs)))


def test_a_task_cannot_ask_less_than_the_minimum_participation_fee():
    """A free (or nearly free) task lets one account take every submission slot at no cost:
    a block publishing one is refused."""
    chain = LocalChain()
    minimum = chain.params.min_participation_fee
    assert minimum >= 1
    for fee in (0, minimum - 1):
        spec, _ = chain.task_spec(participation_fee=fee)
        with pytest.raises(InvalidBlockTx, match="ParticipationFeeTooLow") as refused:
            _propose(chain, [chain.tx(chain.keys[4], spec, nonce=0)])
        assert isinstance(refused.value.error, ParticipationFeeTooLow)
    spec, _ = chain.task_spec(participation_fee=minimum)
    chain.commit([chain.tx(chain.keys[4], spec)])
    assert chain.state.get_task(1).spec.participation_fee == minimum


def test_filling_every_slot_costs_max_submissions_times_the_fee():
    """One account takes all max_submissions_per_task slots of a task asking the minimum fee:
    it pays exactly max_submissions * fee (plus its transaction fees), and nothing more fits."""
    slots = 4
    comp = Competition(
        params=dataclasses.replace(FAST_PARAMS, max_submissions_per_task=slots),
        participation_fee=FAST_PARAMS.min_participation_fee,
    )
    comp.reveal_training()
    squatter = comp.trainers[0]
    before = comp.chain.state.get_account(squatter.address).balance
    escrow = comp.task.escrow
    chain = comp.chain
    txs = [
        chain.tx(squatter, SubmitModel(1, chain.commitment_for(squatter, fake_cid(f"s{i}")), 1))
        for i in range(slots)
    ]
    chain.commit(txs)
    fee = comp.spec.participation_fee
    assert len(comp.task.submissions) == slots
    assert before - chain.state.get_account(squatter.address).balance == slots * fee + slots * 1
    assert comp.task.escrow == escrow + slots * fee
    other = comp.trainers[1]
    late = chain.tx(other, SubmitModel(1, chain.commitment_for(other, fake_cid("x")), 1))
    with pytest.raises(InvalidBlockTx, match="LimitExceeded"):
        _propose(chain, [late])


def test_participation_fee_must_be_affordable(comp):
    comp.reveal_training()
    poor = comp.chain.keys[7]
    keep = comp.spec.participation_fee  # after the tx fee, one short of the participation fee
    comp.commit(poor, Transfer(comp.supplier.address, comp.chain.balance - keep - 1))
    assert comp.chain.state.get_account(poor.address).balance == keep
    with pytest.raises(InsufficientFunds, match="participation fee"):
        comp.attempt(poor, SubmitModel(1, b"y" * 32, 1))


# -- test reveal --


def _to_tbh(comp):
    comp.reveal_training()
    comp.submit_all([fake_cid(f"model-{name}") for name in ["a", "b", "c"]])
    comp.chain.advance_to(comp.spec.tbh - 1)


def test_reveal_test_window(comp):
    _to_tbh(comp)
    body = RevealTest(1, comp.data.reveals(comp.task.test_groups))
    with pytest.raises(WrongPhase, match="revealed in heights"):
        comp.attempt(comp.supplier, body, height=comp.spec.tbh - 1)
    with pytest.raises(WrongPhase):
        comp.attempt(comp.supplier, body, height=reveal_test_end(comp.task, comp.params))
    comp.reveal_test()
    assert comp.task.test_revealed
    with pytest.raises(WrongPhase):  # only once
        comp.attempt(comp.supplier, body)


def test_reveal_test_that_does_not_match_is_refused(comp):
    _to_tbh(comp)
    reveals = list(comp.data.reveals(comp.task.test_groups))
    reveals[0] = dataclasses.replace(reveals[0], cid=fake_cid("easier test set"))
    with pytest.raises(CommitmentMismatch):
        comp.attempt(comp.supplier, RevealTest(1, tuple(reveals)))
    with pytest.raises(CommitmentMismatch):  # a training group passed off as a test group
        comp.attempt(comp.supplier, RevealTest(1, comp.data.reveals(comp.training_indices()[:2])))
    with pytest.raises(NotSupplier):
        comp.attempt(comp.trainers[0], RevealTest(1, comp.data.reveals(comp.task.test_groups)))


# -- model reveal --


def test_model_reveal_waits_for_the_test_set(comp):
    _to_tbh(comp)
    body = RevealModel(1, fake_cid("model-a"), 1_000)
    with pytest.raises(WrongPhase):
        comp.attempt(comp.trainers[0], body, height=comp.spec.tbh)  # test not yet revealed
    comp.reveal_test()
    comp.commit(comp.trainers[0], body)
    sub = comp.chain.state.get_submission(comp.task.submissions[0])
    assert sub.model_cid == fake_cid("model-a")
    with pytest.raises(DuplicateSubmission, match="already revealed"):
        comp.attempt(comp.trainers[0], body)


def test_model_reveal_window_closes(comp):
    _to_tbh(comp)
    comp.reveal_test()
    end = upload_end(comp.task, comp.params)
    with pytest.raises(WrongPhase):
        comp.attempt(comp.trainers[0], RevealModel(1, fake_cid("model-a"), 1_000), height=end)


def test_model_reveal_opens_at_the_deadline_without_a_test_reveal(comp):
    _to_tbh(comp)
    comp.chain.advance_to(reveal_test_end(comp.task, comp.params) - 1)
    comp.attempt(comp.trainers[0], RevealModel(1, fake_cid("model-a"), 1_000))


def test_model_reveal_must_match_the_commitment(comp):
    _to_tbh(comp)
    comp.reveal_test()
    with pytest.raises(CommitmentMismatch):
        comp.attempt(comp.trainers[0], RevealModel(1, fake_cid("a different model"), 1_000))


def test_copied_commitment_gains_nothing(comp):
    """Paper III-B: a trainer who copies another's commitment can never reveal it, because the
    commitment binds the original trainer's address; the copier only loses the fee."""
    comp.reveal_training()
    honest, copier = comp.trainers[0], comp.trainers[1]
    cid = fake_cid("honest model")
    comp.submit(honest, cid)
    honest_commitment = comp.chain.commitment_for(honest, cid)
    comp.commit(copier, SubmitModel(1, honest_commitment, 999_999))  # accepted, but useless
    comp.chain.advance_to(comp.spec.tbh - 1)
    comp.reveal_test()
    with pytest.raises(CommitmentMismatch):  # the copier reveals the honest model's CID
        comp.attempt(copier, RevealModel(1, cid, 1_000))
    comp.commit(honest, RevealModel(1, cid, 1_000))  # the honest trainer is unaffected
    copied = comp.chain.state.get_submission(comp.task.submissions[1])
    assert copied.trainer == copier.address and copied.model_cid is None


def test_phases_in_order(comp):
    params = comp.params
    assert compute_phase(comp.task, comp.chain.height, params) is Phase.AWAITING_TRAINING
    comp.reveal_training()
    task = comp.task
    assert compute_phase(task, task.spec.tbh - 1, params) is Phase.TRAINING
    assert compute_phase(task, task.spec.tbh, params) is Phase.TEST_REVEAL
    assert compute_phase(task, reveal_test_end(task, params), params) is Phase.UPLOAD
    assert compute_phase(task, upload_end(task, params), params) is Phase.EVALUATION
    assert compute_phase(task, ready_height(task, params), params) is Phase.READY


def test_evaluation_falls_back_to_training_groups(comp):
    comp.reveal_training()
    assert evaluation_groups(comp.task) == comp.task.training_reveals
    comp.chain.advance_to(comp.spec.tbh - 1)
    comp.reveal_test()
    assert evaluation_groups(comp.task) == comp.task.test_reveals


def test_evaluation_seed_is_fixed_when_uploads_close(comp):
    _to_tbh(comp)
    comp.reveal_test()
    end = upload_end(comp.task, comp.params)
    comp.chain.advance_to(end - 1)
    assert comp.task.evaluation_seed == bytes(32) and comp.task.evaluation_weight == 0
    comp.chain.commit()
    assert comp.task.evaluation_seed == comp.chain.blocks[-1].header.seed
    assert comp.task.evaluation_weight == comp.chain.state.tip.total_stake > 0
    comp.chain.commit()
    assert comp.task.evaluation_seed == comp.chain.blocks[-2].header.seed
