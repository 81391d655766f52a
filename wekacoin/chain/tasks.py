"""The task lifecycle (docs/protocol.md, "Task lifecycle"), as rules over block heights.

    published --(split drawn d blocks later; RevealTraining within L blocks of it)-->
      training (until tbh)
      --> test reveal window [tbh, tbh + test_reveal_window)
      --> model uploads until tbh + test_reveal_window + upload_window
      --> evaluation window --> ready: settled by the first block that chooses it

Commitments. A data group is committed as H(domain || nonce || cid) and a model as
H(domain || trainer address || cid). The CID is itself a hash of the content, so committing to
it binds the bytes while letting every node check a reveal without fetching anything; the
32-byte nonce defeats guessing a small group from its commitment (DanKu 4.5). Binding the
trainer's address makes a copied model commitment worthless to the copier.

The test groups are drawn from the seed of block `published + test_split_delay` (DanKu 5.2
draws them from a future block): when the supplier commits to the groups nobody knows that
seed, not even the proposer who includes the task, so nobody can place the rows a baseline
memorised in the test set.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from enum import Enum

from wekacoin.chain.accounts import credit, debit
from wekacoin.chain.context import BlockContext
from wekacoin.chain.errors import (
    CommitmentMismatch,
    DuplicateSubmission,
    InsufficientFunds,
    InvalidField,
    LimitExceeded,
    NotSupplier,
    ParticipationFeeTooLow,
    UnknownTask,
    WrongPhase,
)
from wekacoin.chain.state import State
from wekacoin.chain.storage import check_blob_size, register_blob
from wekacoin.content.cid import is_canonical_cid
from wekacoin.types.codec import MAX_INT
from wekacoin.types.genesis import Params
from wekacoin.types.ledger import Account, Submission, Task, TaskStatus
from wekacoin.types.primitives import Hash, SubmissionId, TaskId
from wekacoin.types.ranking import Outcome, Payment, Resolution, TaskSettlement
from wekacoin.types.tx import (
    GroupReveal,
    PublishTask,
    RevealModel,
    RevealTest,
    RevealTraining,
    SubmitModel,
    VerifiedTx,
)

_GROUP_DOMAIN = b"wekacoin/data-group/v1"
_MODEL_DOMAIN = b"wekacoin/model-commitment/v1"
_TEST_GROUPS_DOMAIN = b"wekacoin/test-groups/v1"
_MAX_COLUMN_CHARS = 256


class Phase(Enum):
    AWAITING_TRAINING = "awaiting training reveal"
    TRAINING = "training"
    TEST_REVEAL = "test reveal"
    UPLOAD = "model upload"
    EVALUATION = "evaluation"
    READY = "ready to settle"
    CANCELLED = "cancelled"
    SETTLED = "settled"
    EXPIRED = "expired"


# -- commitments and the test split (pure helpers shared with wallets and evaluators) --


def group_commitment(nonce: bytes, cid: str) -> Hash:
    return Hash(hashlib.sha256(_GROUP_DOMAIN + nonce + cid.encode("ascii")).digest())


def model_commitment(trainer: bytes, cid: str) -> Hash:
    return Hash(hashlib.sha256(_MODEL_DOMAIN + trainer + cid.encode("ascii")).digest())


def compute_test_groups(seed: bytes, task_id: int, groups: int, count: int) -> tuple[int, ...]:
    """`count` distinct group indices in [0, groups), drawn uniformly from the seed.

    A partial Fisher-Yates shuffle fed by SHA-256(domain || seed || task id || counter); each
    draw uses rejection sampling so no index is favoured by modulo bias.
    """
    order = list(range(groups))
    counter = 0

    def draw(bound: int) -> int:
        nonlocal counter
        limit = 2**64 - (2**64 % bound)
        while True:
            block = hashlib.sha256(
                _TEST_GROUPS_DOMAIN + seed + task_id.to_bytes(8, "big")
                + counter.to_bytes(4, "big")
            ).digest()
            counter += 1
            value = int.from_bytes(block[:8], "big")
            if value < limit:
                return value % bound

    for i in range(count):
        j = i + draw(groups - i)
        order[i], order[j] = order[j], order[i]
    return tuple(sorted(order[:count]))


def count_test_groups(groups: int, params: Params) -> int:
    return max(1, groups * params.test_group_percent // 100)


def is_cid_text(text: str) -> bool:
    """A CID this network can fetch and verify (sha2-256, raw or dag-pb), spelled canonically
    so that one piece of content has one spelling per CID version."""
    return is_canonical_cid(text)


# -- heights --


def split_height(task: Task, params: Params) -> int:
    """The block whose seed draws the test groups (at its start, before its transactions)."""
    return task.published_height + params.test_split_delay


def training_reveal_deadline(task: Task, params: Params) -> int:
    """Last height at which RevealTraining is accepted (from the block after the split)."""
    return split_height(task, params) + params.training_reveal_window


def reveal_test_end(task: Task, params: Params) -> int:
    return task.spec.tbh + params.test_reveal_window


def upload_end(task: Task, params: Params) -> int:
    """First height at which RevealModel is no longer accepted."""
    return reveal_test_end(task, params) + params.upload_window


def ready_height(task: Task, params: Params) -> int:
    """First height whose block may settle the task."""
    return upload_end(task, params) + params.evaluation_window


def settlement_deadline(task: Task, params: Params) -> int:
    """Last height whose block may settle the task."""
    return ready_height(task, params) + params.settlement_window


def model_reveal_open(task: Task, height: int, params: Params) -> bool:
    opened = task.test_revealed or height >= reveal_test_end(task, params)
    return task.spec.tbh <= height < upload_end(task, params) and opened


def compute_phase(task: Task, height: int, params: Params) -> Phase:
    if task.status is TaskStatus.CANCELLED:
        return Phase.CANCELLED
    if task.status is TaskStatus.SETTLED:
        return Phase.SETTLED
    if task.status is TaskStatus.EXPIRED:
        return Phase.EXPIRED
    if task.status is TaskStatus.PUBLISHED:
        return Phase.AWAITING_TRAINING
    if height < task.spec.tbh:
        return Phase.TRAINING
    if height < reveal_test_end(task, params):
        return Phase.TEST_REVEAL
    if height < upload_end(task, params):
        return Phase.UPLOAD
    if height < ready_height(task, params):
        return Phase.EVALUATION
    return Phase.READY


def evaluation_groups(task: Task) -> tuple[GroupReveal, ...]:
    """The groups models are ranked on: the test set, or the training set if it never came."""
    return task.test_reveals if task.test_revealed else task.training_reveals


# -- transaction rules --


def validate_task_spec(spec: PublishTask, params: Params, height: int) -> None:
    if not spec.title.strip() or len(spec.title) > params.max_title_chars:
        raise InvalidField(f"the title must have 1 to {params.max_title_chars} characters")
    if spec.schema.kind not in spec.metric.kinds:
        raise InvalidField(f"metric {spec.metric.value} does not apply to {spec.schema.kind.value}")
    columns = spec.schema.feature_columns + (spec.schema.label_column,)
    if not spec.schema.feature_columns or len(columns) > params.max_columns:
        raise InvalidField(f"a task has 1 to {params.max_columns - 1} feature columns")
    if len(set(columns)) != len(columns):
        raise InvalidField("column names must be distinct (and the label not a feature)")
    if any(not c or len(c) > _MAX_COLUMN_CHARS or not c.isprintable() for c in columns):
        raise InvalidField(f"column names are 1 to {_MAX_COLUMN_CHARS} printable characters")
    if not params.min_groups <= len(spec.group_commitments) <= params.max_groups:
        raise InvalidField(
            f"commit to between {params.min_groups} and {params.max_groups} data groups"
        )
    if spec.tbh < height or spec.tbh - height < params.min_training_period:
        raise InvalidField(
            f"the test release height {spec.tbh} must be at least {params.min_training_period}"
            f" blocks after {height}"
        )
    if spec.reward == 0:
        raise InvalidField("the reward must be positive")
    if spec.reward + spec.hosting_fee > MAX_INT:  # the task's escrow is a 64-bit Amount
        raise InvalidField("the reward plus the hosting fee must be below 2^64")
    if spec.participation_fee < params.min_participation_fee:
        raise ParticipationFeeTooLow(
            f"the participation fee {spec.participation_fee} is below the chain's minimum"
            f" {params.min_participation_fee}"
        )
    if not 0 < spec.limits.max_model_bytes <= params.max_model_bytes:
        raise LimitExceeded(f"the model size limit must be in (0, {params.max_model_bytes}]")
    if not 0 < spec.limits.eval_time_ms <= params.max_eval_time_ms:
        raise LimitExceeded(
            f"the evaluation time limit must be in (0, {params.max_eval_time_ms}] ms"
        )


def process_publish_task(
    state: State, vtx: VerifiedTx, spec: PublishTask, payer: Account, ctx: BlockContext
) -> None:
    params = state.params
    validate_task_spec(spec, params, ctx.height)
    escrow = spec.reward + spec.hosting_fee
    if payer.balance < escrow:
        raise InsufficientFunds(
            f"balance {payer.balance} cannot escrow reward + hosting fee {escrow}"
        )
    tip = state.tip
    task_id = tip.next_task_id
    state.put_account(vtx.sender, debit(payer, escrow))
    state.put_task(Task(
        id=task_id, supplier=vtx.sender, spec=spec, published_height=ctx.height,
        test_groups=(), status=TaskStatus.PUBLISHED, escrow=escrow,
    ))
    state.put_tip(replace(
        tip, next_task_id=TaskId(task_id + 1), open_tasks=tip.open_tasks + (task_id,),
    ))


def _supplier_task(state: State, vtx: VerifiedTx, task_id: int) -> Task:
    task = get_task_or_raise(state, task_id)
    if task.supplier != vtx.sender:
        raise NotSupplier(f"only the supplier of task {task_id} can reveal its data")
    return task


def get_task_or_raise(state: State, task_id: int) -> Task:
    task = state.get_task(task_id)
    if task is None:
        raise UnknownTask(f"there is no task {task_id}")
    return task


def _check_reveal(
    task: Task, groups: tuple[GroupReveal, ...], expected: list[int], max_group_bytes: int
) -> None:
    indices = [g.index for g in groups]
    if indices != expected:
        raise CommitmentMismatch(
            f"reveal exactly groups {expected} in ascending order (got {indices})"
        )
    for g in groups:
        if not is_cid_text(g.cid):
            raise InvalidField(f"group {g.index}: {g.cid!r} is not a CID")
        check_blob_size(g.size, max_group_bytes, f"group {g.index}")
        if group_commitment(g.nonce, g.cid) != task.spec.group_commitments[g.index]:
            raise CommitmentMismatch(f"group {g.index} does not match its commitment")


def process_reveal_training(
    state: State, vtx: VerifiedTx, body: RevealTraining, payer: Account, ctx: BlockContext
) -> None:
    task = _supplier_task(state, vtx, body.task_id)
    if task.status is not TaskStatus.PUBLISHED:
        raise WrongPhase(f"task {task.id} is {compute_phase(task, ctx.height, state.params).value}")
    if ctx.height <= split_height(task, state.params):
        raise WrongPhase(
            f"the test split of task {task.id} is drawn at height"
            f" {split_height(task, state.params)}; reveal the training groups after it"
        )
    if ctx.height > training_reveal_deadline(task, state.params):
        raise WrongPhase(f"the training reveal window of task {task.id} has closed")
    test = set(task.test_groups)
    training = [i for i in range(len(task.spec.group_commitments)) if i not in test]
    _check_reveal(task, body.groups, training, state.params.max_group_bytes)
    if not is_cid_text(body.baseline_cid):
        raise InvalidField(f"the baseline CID {body.baseline_cid!r} is not a CID")
    check_blob_size(body.baseline_size, task.spec.limits.max_model_bytes, "the baseline")
    state.put_account(vtx.sender, payer)
    _register_groups(state, task, body.groups)
    register_blob(state, body.baseline_cid, body.baseline_size, task.id)
    state.put_task(replace(
        task, status=TaskStatus.ACTIVE, training_reveals=body.groups,
        baseline_cid=body.baseline_cid, baseline_size=body.baseline_size,
        baseline_score=body.baseline_score,
    ))


def process_submit_model(
    state: State, vtx: VerifiedTx, body: SubmitModel, payer: Account, ctx: BlockContext
) -> None:
    params = state.params
    task = get_task_or_raise(state, body.task_id)
    if task.status is not TaskStatus.ACTIVE or ctx.height >= task.spec.tbh:
        phase = compute_phase(task, ctx.height, params)
        raise WrongPhase(f"task {task.id} takes no submissions: it is {phase.value}")
    if len(task.submissions) >= params.max_submissions_per_task:
        raise LimitExceeded(
            f"task {task.id} has reached {params.max_submissions_per_task} submissions"
        )
    if state.get_commitment(vtx.sender, task.id, body.commitment) is not None:
        raise DuplicateSubmission("you already submitted this commitment to this task")
    fee = task.spec.participation_fee
    if payer.balance < fee:
        raise InsufficientFunds(f"balance {payer.balance} cannot pay the participation fee {fee}")
    tip = state.tip
    sid = tip.next_submission_id
    state.put_account(vtx.sender, debit(payer, fee))
    state.put_submission(Submission(
        id=sid, task_id=task.id, trainer=vtx.sender, trainer_key=vtx.tx.unsigned.sender,
        commitment=body.commitment, train_score=body.train_score, fee=fee, height=ctx.height,
    ))
    state.put_commitment(vtx.sender, task.id, body.commitment, sid)
    state.put_task(replace(task, escrow=task.escrow + fee, submissions=task.submissions + (sid,)))
    state.put_tip(replace(tip, next_submission_id=SubmissionId(sid + 1)))


def process_reveal_test(
    state: State, vtx: VerifiedTx, body: RevealTest, payer: Account, ctx: BlockContext
) -> None:
    params = state.params
    task = _supplier_task(state, vtx, body.task_id)
    if task.status is not TaskStatus.ACTIVE or task.test_revealed:
        raise WrongPhase(f"task {task.id} is {compute_phase(task, ctx.height, params).value}")
    if not task.spec.tbh <= ctx.height < reveal_test_end(task, params):
        raise WrongPhase(
            f"the test set of task {task.id} is revealed in heights "
            f"[{task.spec.tbh}, {reveal_test_end(task, params)})"
        )
    _check_reveal(task, body.groups, list(task.test_groups), params.max_group_bytes)
    state.put_account(vtx.sender, payer)
    _register_groups(state, task, body.groups)
    state.put_task(replace(task, test_reveals=body.groups))


def process_reveal_model(
    state: State, vtx: VerifiedTx, body: RevealModel, payer: Account, ctx: BlockContext
) -> None:
    params = state.params
    task = get_task_or_raise(state, body.task_id)
    if task.status is not TaskStatus.ACTIVE or not model_reveal_open(task, ctx.height, params):
        raise WrongPhase(
            f"models of task {task.id} are revealed after its test set and before height "
            f"{upload_end(task, params)}; it is {compute_phase(task, ctx.height, params).value}"
        )
    if not is_cid_text(body.model_cid):
        raise InvalidField(f"{body.model_cid!r} is not a CID")
    check_blob_size(body.model_size, task.spec.limits.max_model_bytes, "the model")
    commitment = model_commitment(vtx.sender, body.model_cid)
    sid = state.get_commitment(vtx.sender, task.id, commitment)
    if sid is None:
        raise CommitmentMismatch(
            f"none of your submissions to task {task.id} commits to {body.model_cid}"
        )
    submission = state.get_existing_submission(sid)
    if submission.model_cid is not None:
        raise DuplicateSubmission(f"submission {sid} is already revealed")
    state.put_account(vtx.sender, payer)
    state.put_submission(replace(
        submission, model_cid=body.model_cid, model_size=body.model_size
    ))
    register_blob(state, body.model_cid, body.model_size, task.id)


def _register_groups(state: State, task: Task, groups: tuple[GroupReveal, ...]) -> None:
    for g in groups:
        register_blob(state, g.cid, g.size, task.id)


# -- block-level task events --


def process_task_deadlines(state: State, height: int, seed: bytes) -> None:
    """At the start of block `height`, after settlements: draw the test split of tasks
    published `test_split_delay` blocks ago, fix the evaluation seed and weight of tasks
    whose uploads close now, cancel tasks whose training data never came, and expire tasks
    no block settled.

    Cancelled: the reward goes back to the supplier and the hosting fee is burned, so
    withholding the data earns the supplier nothing. Expired (no committee agreed on a
    ranking in time): the reward goes back to the supplier, every trainer gets the
    participation fee back, and the hosting fee is burned; nobody gains from a task that
    could not be judged.
    """
    params = state.params
    tip = state.tip
    closed = []
    for task_id in tip.open_tasks:
        task = state.get_existing_task(task_id)
        if task.status is TaskStatus.PUBLISHED and height == split_height(task, params):
            groups = len(task.spec.group_commitments)
            task = replace(task, test_groups=compute_test_groups(
                seed, task_id, groups, count_test_groups(groups, params)
            ))
            state.put_task(task)
        if task.status is TaskStatus.ACTIVE and height == upload_end(task, params):
            task = replace(task, evaluation_seed=seed, evaluation_weight=state.tip.total_weight)
            state.put_task(task)
        if task.status is TaskStatus.PUBLISHED and height > training_reveal_deadline(task, params):
            payments = {task.supplier: task.spec.reward}
            _close_task(state, task, height, Resolution.CANCELLED, payments)
        elif task.status is TaskStatus.ACTIVE and height > settlement_deadline(task, params):
            payments = {task.supplier: task.spec.reward}
            for sid in task.submissions:
                submission = state.get_existing_submission(sid)
                payments[submission.trainer] = payments.get(submission.trainer, 0) + submission.fee
            _close_task(state, task, height, Resolution.EXPIRED, payments)
        else:
            continue
        closed.append(task_id)
    if closed:
        tip = state.tip
        state.put_tip(replace(tip, open_tasks=tuple(t for t in tip.open_tasks if t not in closed)))


def _close_task(
    state: State, task: Task, height: int, resolution: Resolution, payments: dict[bytes, int]
) -> None:
    """Cancel or expire: pay back what `payments` says, burn the hosting fee, keep a record."""
    for address in sorted(payments):
        credit(state, address, payments[address])
    burned = task.spec.hosting_fee
    assert sum(payments.values()) + burned == task.escrow
    forget_rankings(state, task)
    state.put_task(replace(task, status=TaskStatus(_CLOSED_STATUS[resolution]), escrow=0,
                           settled_height=height, rankers=()))
    state.put_settlement(TaskSettlement(
        task.id, height, resolution, SubmissionId(0), Outcome.UNEVALUATED, 0, (), (),
        tuple(Payment(a, payments[a]) for a in sorted(payments) if payments[a]), 0, burned,
    ))
    state.put_tip(replace(state.tip, burned=state.tip.burned + burned))


_CLOSED_STATUS = {
    Resolution.CANCELLED: TaskStatus.CANCELLED, Resolution.EXPIRED: TaskStatus.EXPIRED,
}


def forget_rankings(state: State, task: Task) -> None:
    """Drop the recorded rankings of a task that ends (its record keeps what matters)."""
    for key in task.rankers:
        state.put_ranking(task.id, key, None)


def tasks_to_evaluate(state: State, height: int) -> list[TaskId]:
    """Active tasks whose models are all revealed (upload window over) and not yet settled."""
    params = state.params
    return [
        t for t in state.tip.open_tasks
        if (task := state.get_existing_task(t)).status is TaskStatus.ACTIVE
        and height >= upload_end(task, params)
    ]
