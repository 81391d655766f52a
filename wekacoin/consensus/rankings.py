"""A node's side of ranking agreement: which tasks it must evaluate, its own signed
rankings, and the rankings it received that the chain has not recorded yet (a proposer
records them in its block).

A node signs one ranking per seated key and task, ever: the signed rankings are persisted
before they leave (`Persist.rankings`) and restored after a restart (`restore`), and the
node re-sends them every `RESEND_ROUNDS` rounds until the chain records them (a ranking sent
before the peers' tips reached the upload end is refused by them, and gossip does not
retry)."""

from __future__ import annotations

from wekacoin.chain.rankings import select_evaluator, sign_ranking
from wekacoin.chain.state import State
from wekacoin.chain.tasks import tasks_to_evaluate
from wekacoin.crypto.keys import KeyPair
from wekacoin.sortition import Selection
from wekacoin.types.primitives import PublicKey
from wekacoin.types.ranking import CandidateRanking, Outcome, RankEntry, SignedRanking

RESEND_ROUNDS = 3
"""Rounds between two sends of an own ranking the chain has not recorded."""


class RankingBook:
    def __init__(self) -> None:
        self.seats: dict[int, dict[PublicKey, Selection]] = {}
        """Tasks whose committee we looked up, and our keys' seats on it (maybe none)."""
        self.own: dict[int, tuple[SignedRanking, ...]] = {}
        """Our signed rankings of each task (one per seated key)."""
        self._sent: dict[int, int] = {}
        """Task -> the round we last sent our rankings of it."""
        self.received: dict[int, dict[PublicKey, SignedRanking | None]] = {}
        """None marks an evaluator that signed two different rankings of the task."""

    def tasks_to_start(self, state: State, keys: list[KeyPair]) -> list[int]:
        """Tasks whose committee is newly drawn and has a seat for one of our keys."""
        started = []
        for task_id in tasks_to_evaluate(state, state.height):
            if task_id in self.seats or task_id in self.own:
                continue
            task = state.get_existing_task(task_id)
            seats = {}
            for key in keys:
                seat = select_evaluator(key, task, state)
                if seat is not None:
                    seats[key.public_key] = seat
            self.seats[task_id] = seats
            if seats:
                started.append(task_id)
        return started

    def sign_own(
        self, task_id: int, baseline: tuple[Outcome, int], entries: tuple[RankEntry, ...],
        keys: dict[PublicKey, KeyPair], genesis_hash: bytes, round_: int,
    ) -> list[SignedRanking]:
        """Our rankings of a task, one per seated key, from the sandbox's scores; nothing if
        we signed the task's rankings before (even before a restart)."""
        if task_id in self.own:
            return []
        signed = []
        for pk, seat in sorted(self.seats.get(task_id, {}).items()):
            ranking = CandidateRanking(task_id, pk, seat.proof, baseline[0], baseline[1], entries)
            s = sign_ranking(keys[pk], genesis_hash, ranking)
            self.add(s)
            signed.append(s)
        if signed:
            self.own[task_id] = tuple(signed)
            self._sent[task_id] = round_
        return signed

    def restore(self, signed: tuple[SignedRanking, ...]) -> None:
        """Take back the rankings we signed before a restart: they are due at once."""
        for s in signed:
            task_id = s.ranking.task_id
            if s not in self.own.get(task_id, ()):
                self.own[task_id] = (*self.own.get(task_id, ()), s)
            self.add(s)

    def due(self, state: State, round_: int) -> list[SignedRanking]:
        """Our rankings the chain after `state` has not recorded, if they were last sent
        `RESEND_ROUNDS` rounds ago or never (then marked sent at `round_`)."""
        out = []
        for task_id, signed in sorted(self.own.items()):
            task = state.get_task(task_id)
            if task is None or round_ - self._sent.get(task_id, -RESEND_ROUNDS) < RESEND_ROUNDS:
                continue
            pending = [s for s in signed if s.ranking.evaluator not in task.rankers]
            if pending:
                self._sent[task_id] = round_
                out.extend(pending)
        return out

    def add(self, signed: SignedRanking) -> bool:
        """Keep a received ranking (checked by the caller); False if nothing new."""
        r = signed.ranking
        book = self.received.setdefault(r.task_id, {})
        if r.evaluator in book:
            if book[r.evaluator] in (signed, None):
                return False
            book[r.evaluator] = None
            return True
        book[r.evaluator] = signed
        return True

    def unrecorded(self, state: State) -> tuple[SignedRanking, ...]:
        """Received rankings of open tasks that the chain after `state` has not recorded,
        by (task, evaluator): what a proposer puts in its block."""
        pending = []
        for task_id, book in sorted(self.received.items()):
            task = state.get_task(task_id)
            if task is None:
                continue
            for evaluator, signed in sorted(book.items()):
                if signed is not None and evaluator not in task.rankers:
                    pending.append(signed)
        return tuple(pending)

    def prune(self, state: State) -> None:
        """Forget tasks that are no longer open."""
        open_tasks = set(state.tip.open_tasks)
        for book in (self.seats, self.own, self.received, self._sent):
            for task_id in [t for t in book if t not in open_tasks]:
                del book[task_id]
