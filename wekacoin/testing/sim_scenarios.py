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
    Behaviour,
    EquivocatingProposer,
    EquivocatingVoter,
    Silent,
    WithholdVotes,
    WrongRanking,
)
from wekacoin.testing.sim_net import NetworkModel, Partition
from wekacoin.testing.sim_tasks import Competition

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
    byzantine: dict[int, Behaviour] = {
        order[i]: rng.choice(BYZANTINE)() for i in range(n * BYZANTINE_PERCENT // 100)
    }
    start, length = rng.randint(200, 3_000), rng.randint(1_000, 20_000)
    cut = rng.randint(1, n - 1)
    network = NetworkModel(
        min_delay_ms=5, max_delay_ms=rng.choice([50, 150, 300]),
        drop_permille=rng.choice([0, 20, 50, 100]), duplicate_permille=rng.choice([0, 50]),
        partitions=(
            Partition(start, start + length, (frozenset(order[:cut]), frozenset(order[cut:]))),
        ),
    )
    crashes: tuple[Crash, ...] = ()
    if rng.randrange(10) < 3:
        honest = [i for i in range(n) if i not in byzantine]
        crashes = (Crash(rng.choice(honest), rng.randint(100, 5_000), rng.randint(6_000, 15_000)),)
    return SimConfig(
        seed=seed, nodes=n, behaviours=byzantine, network=network, crashes=crashes,
        target_height=target_height, params=dataclasses.replace(SIM_PARAMS, max_steps=max_steps),
        progress_after_ms=network.healed_at, max_time_ms=start + length + 200_000,
    )


LONG_BYZANTINE = (*BYZANTINE, WrongRanking)
LONG_PARAMS = dataclasses.replace(
    SIM_PARAMS, min_training_period=16, training_reveal_window=10, test_reveal_window=10,
    upload_window=10, evaluation_window=8,
)
"""Task windows wide enough that a competition can go through partitions and the empty
blocks of rounds without a proposal."""


def long_run(seed: int, rounds: int = 60) -> SimConfig:
    """A long adversarial run (`bench/simulate.py --long`): 7 or 10 nodes, 20-30 % of the
    stake Byzantine (silent, withholding, equivocating votes or proposals, false rankings),
    a lossy network, two or three partitions (minority/majority splits and an isolated node)
    that heal, one or two honest crashes with restarts, and a competition run through the
    chain. `rounds` blocks must be reached by every honest node that is up."""
    rng = random.Random(seed)
    n = rng.choice([7, 10])
    order = list(range(n))
    rng.shuffle(order)
    count = rng.choice([c for c in range(n) if 20 * n <= 100 * c <= 30 * n])
    byzantine: dict[int, Behaviour] = {
        order[i]: rng.choice(LONG_BYZANTINE)() for i in range(count)
    }
    honest = [i for i in range(n) if i not in byzantine]
    partitions, t = [], 0
    for _ in range(rng.randint(2, 3)):
        start = t + rng.randint(2_000, 15_000)
        end = start + rng.randint(1_000, 10_000)
        if rng.randrange(3) == 0:
            alone = rng.choice(order)
            groups = (frozenset([alone]), frozenset(i for i in order if i != alone))
        else:
            cut = rng.randint(1, n - 1)
            groups = (frozenset(order[:cut]), frozenset(order[cut:]))
        partitions.append(Partition(start, end, groups))
        t = end
    network = NetworkModel(
        min_delay_ms=5, max_delay_ms=rng.choice([50, 150, 300]),
        drop_permille=rng.choice([0, 20, 50]), duplicate_permille=rng.choice([0, 50]),
        partitions=tuple(partitions),
    )
    crashes = []
    for node in rng.sample(honest, rng.randint(1, 2)):
        at = rng.randint(500, t + 5_000)
        crashes.append(Crash(node, at, at + rng.randint(500, 8_000)))
    return SimConfig(
        seed=seed, nodes=n, behaviours=byzantine, network=network, crashes=tuple(crashes),
        target_height=rounds, progress_after_ms=network.healed_at,
        max_time_ms=t + rounds * 5_000, competition=Competition(), params=LONG_PARAMS,
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
    short = {
        i: result.heights[i] for i in result.honest_nodes
        if result.heights[i] < config.target_height
    }
    if short:
        problems.append(f"honest nodes short of height {config.target_height}: {short}")
    heal = config.network.healed_at
    first = result.first_commits_after(heal)
    late = {i: first.get(i) for i in result.honest_nodes
            if first.get(i) is None or first[i] - heal > liveness_bound_ms(config)}
    if late:
        problems.append(
            f"no progress within {liveness_bound_ms(config)} ms of the heal at {heal}: {late}"
        )
    return problems
