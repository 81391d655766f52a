"""Admitting a transaction from RPC or gossip: the chain rules (mempool), plus the relay
policies that need more than the ledger. Today one: a training reveal is admitted only once
this node checked that the task's baseline reproduces the stated training score on the
revealed groups (so a task whose baseline lies never gets going, and is cancelled)."""

from __future__ import annotations

import logging
from collections import OrderedDict

import trio

from wekacoin.errors import WekaError
from wekacoin.mempool.pool import Admission
from wekacoin.node.chain import ChainService, Rejected
from wekacoin.node.evaluation import EvaluationService
from wekacoin.types.tx import RevealTraining, Tx

log = logging.getLogger("wekacoin.node.admission")

_VERDICTS = 1_000  # remembered baseline checks, by transaction id


class Admissions:
    def __init__(self, chain: ChainService, evaluation: EvaluationService) -> None:
        self.chain = chain
        self.evaluation = evaluation
        self._checked: OrderedDict[bytes, str | None] = OrderedDict()  # tx id -> refusal

    async def admit(self, tx: Tx, now_ms: int, *, submitted: bytes | None = None) -> Admission:
        """Like `ChainService.admit` (raising the mempool's errors), after the relay policies;
        a failed policy raises Rejected. `submitted`: the raw bytes of a transaction a client
        submitted to this node (`ChainService.submit_local`)."""
        if isinstance(tx.unsigned.body, RevealTraining):
            await self._check_baseline(tx)
        if submitted is not None:
            return self.chain.submit_local(tx, submitted, now_ms)
        return self.chain.admit(tx, now_ms)

    async def _check_baseline(self, tx: Tx) -> None:
        tx_id = tx.id
        if tx_id not in self._checked:
            state = self.chain.state
            try:
                await trio.to_thread.run_sync(
                    self.evaluation.check_training_reveal, state, tx.unsigned.body,
                )
                verdict = None
            except WekaError as e:
                verdict = f"training reveal refused: {e}"
                log.info("%s", verdict)
            self._checked[tx_id] = verdict
            while len(self._checked) > _VERDICTS:
                self._checked.popitem(last=False)
        if self._checked[tx_id] is not None:
            raise Rejected(self._checked[tx_id])
