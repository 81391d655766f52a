"""Where the open tasks are: one INFO line each time a task enters a phase (settlement,
expiry and cancellation included), and the number of open tasks per phase for /metrics."""

from __future__ import annotations

import logging
from collections import Counter

from wekacoin.chain.state import State
from wekacoin.chain.tasks import Phase, compute_phase
from wekacoin.node.metrics import OPEN_PHASES, NodeMetrics
from wekacoin.types.genesis import Params

log = logging.getLogger("wekacoin.node.tasks")


def compute_open_phases(state: State, params: Params) -> dict[int, Phase]:
    """The phase of every open task, as the next block sees it (like `tasks.list`)."""
    height = state.height + 1
    return {task_id: compute_phase(state.get_existing_task(task_id), height, params)
            for task_id in state.tip.open_tasks}


class TaskPhases:
    """Call `on_tip` with each new tip (and once at start-up)."""

    def __init__(self, params: Params, metrics: NodeMetrics) -> None:
        self._params = params
        self._metrics = metrics
        self._phases: dict[int, Phase] = {}

    def on_tip(self, state: State) -> None:
        phases = compute_open_phases(state, self._params)
        for task_id, phase in phases.items():
            if self._phases.get(task_id) is not phase:
                log.info("task %d: %s (height %d)", task_id, phase.value, state.height)
        for task_id in self._phases.keys() - phases.keys():
            task = state.get_task(task_id)
            if task is not None:  # a rollback may take a task back before it was published
                phase = compute_phase(task, state.height + 1, self._params)
                log.info("task %d: %s (height %d)", task_id, phase.value, state.height)
        self._phases = phases
        counts = Counter(phases.values())
        for phase in OPEN_PHASES:
            self._metrics.tasks_open.labels(phase=phase.name.lower()).set(counts[phase])
