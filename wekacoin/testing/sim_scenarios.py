"""Simulation scenarios drawn from a seed: the sweep that tests and `bench/simulate.py` run.

`adversarial(seed)` picks 5, 7 or 10 nodes; up to 20 % of the stake Byzantine (silent,
withholding votes, equivocating votes, equivocating proposals); a lossy, duplicating,
reordering network; one partition that heals; and sometimes an honest node that crashes and
restarts from its checkpoint. `check(result, config)` states what must hold.
"""

from __future__ import annotations

import dataclasses
import random

from wekacoin.testing.sim import SIM_PARAMS, Crash, SimConfig, SimResult
from wekacoin.testing.sim_byzantine import (
    EquivocatingProposer, EquivocatingVoter, Silent, WithholdVotes,
)
from wekacoin.testing.sim_net import NetworkModel, Partition

BYZANTINE = (Silent, WithholdVotes, EquivocatingVoter, EquivocatingProposer)
BYZANTINE_PERCENT = 20
LIVENESS_STEPS = 40
"""After the heal, every honest node commits within this many lambda_step (plus one
lambda_block): a partition can leave the nodes at different steps and periods."""


def adversarial(seed: int, *, max_steps: int = 30, target_height: int = 4) -> SimConfig:
    rng = random.Random(seed)
    n = rng.choice([5, 7, 10])
    order = list(range(n))
    rng.shuffle(order)
    byzantine = {order[i]: rng.choice(BYZANTINE)() for i in range(n * BYZANTINE_PERCENT // 100)}
    start, length = rng.randint(200, 3_000), rng.randint(1_000, 20_000)
    cut = rng.randint(1, n - 1)
    network = NetworkModel(
        min_delay_ms=5, max_delay_ms=rng.choice([50, 150, 300]),
        drop_permille=rng.choice([0, 20, 50, 100]), duplicate_permille=rng.choice([0, 50]),
        partitions=(Partition(start, start + length, (frozenset(order[:cut]), frozenset(order[cut:]))),),
    )
    crashes = ()
    if rng.randrange(10) < 3:
        honest = [i for i in range(n) if i not in byzantine]
        crashes = (Crash(rng.choice(honest), rng.randint(100, 5_000), rng.randint(6_000, 15_000)),)
    return SimConfig(
        seed=seed, nodes=n, behaviours=byzantine, network=network, crashes=crashes,
        target_height=target_height, params=dataclasses.replace(SIM_PARAMS, max_steps=max_steps),
        progress_after_ms=network.healed_at, max_time_ms=start + length + 200_000,
    )


def liveness_bound_ms(config: SimConfig) -> int:
    p = config.params
    return LIVENESS_STEPS * p.lambda_step_ms + p.lambda_block_ms


def check(result: SimResult, config: SimConfig) -> list[str]:
    """What went wrong in a run (empty if nothing): safety, honest equivocation, liveness."""
    problems = []
    if result.conflicting_final:
        problems.append(f"{result.conflicting_final} conflicting FINAL blocks")
    if result.honest_equivocations:
        problems.append(f"{result.honest_equivocations} honest equivocations")
    short = {i: result.heights[i] for i in result.honest_nodes if result.heights[i] < config.target_height}
    if short:
        problems.append(f"honest nodes short of height {config.target_height}: {short}")
    heal = config.network.healed_at
    first = result.first_commits_after(heal)
    late = {i: first.get(i) for i in result.honest_nodes
            if first.get(i) is None or first[i] - heal > liveness_bound_ms(config)}
    if late:
        problems.append(f"no progress within {liveness_bound_ms(config)} ms of the heal at {heal}: {late}")
    return problems
