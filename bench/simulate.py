"""The consensus simulator at scale: safety and liveness over a sweep of adversarial seeds,
the steps of the common case, and the CPU cost of a round as the population grows.

    python bench/simulate.py [--quick | --long]

- Sweep: `sim_scenarios.adversarial(seed)` runs (up to 20 % Byzantine stake, loss,
  duplicates, reordering, a partition that heals, crashes with restarts).
  RESULT sim_conflicting_final = FINAL blocks that conflict with another FINAL block at the
  same height, over all runs (must be 0).
- Common case: honest nodes on a network with 5-60 ms delays.
  RESULT sim_steps_common_case = median BA* steps per round (Reduction 2 + BinaryBA* + final).
- Cost: 100, 1,000 and 10,000 users of equal stake on 20 simulated nodes, the paper's
  committees (tau_step 2000, tau_final 10000, tau_proposer 26). Node 0 is an observer: it
  hosts one user, as an operator's node does, verifies with its own cache, and its driver
  core's CPU time is measured apart (its sortition, its signing, each vote it verifies once
  while the vote's step can still count, counting, blocks). The whole network's CPU is shown
  too (every user evaluates its VRF for every step: O(users), inherent to sortition).
  RESULT sim_node_cost_ratio_10k_1k = the observer's CPU per round at 10,000 users / 1,000.
  RESULT node_vote_cpu_per_round_s = the observer's CPU per round at 10,000 users.
  RESULT sim_cost_ratio_10k_1k = the whole network's CPU per round, 10,000 / 1,000 users.
  A committee is tau sub-users, but a vote is one user's: the votes a node must verify are
  the committee's distinct members, users * (1 - exp(-tau / users)) when stake is equal, which
  grows with the user count until users >> tau, then stays at tau. At 1,000 users every user
  sits on every committee (about 10 sub-users each in the final step); at 10,000 the same
  seats are spread over 3.3 times as many members. The run prints the members expected, the
  votes verified and the CPU per verified vote (flat: the cost follows the members).
- Long (`--long`, instead of the above): `sim_scenarios.long_run(seed)` runs of 60 rounds
  each until at least 10,000 rounds are simulated, with 20-30 % of the stake Byzantine
  (equivocating votes and proposals, false rankings, withholding, silence), partitions that
  heal, honest crashes with restarts, and a competition through the chain; on all cores.
  RESULT sim_rounds = blocks decided over all runs (the highest honest height of each run).
  RESULT sim_conflicting_final = FINAL blocks conflicting with another FINAL block (must be 0).
  RESULT sim_tasks_settled = runs whose competition settled.

Every run drives the node's own consensus driver core (`wekacoin/consensus/driver.py`) with
the real mempool, block assembly, genesis and fork choice.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import wekacoin.consensus.ballot as ballot_module  # noqa: E402
from wekacoin.testing.sim import SimConfig, Simulation  # noqa: E402
from wekacoin.testing.sim_net import NetworkModel  # noqa: E402
from wekacoin.testing.sim_scenarios import adversarial, check, long_run  # noqa: E402


class SortitionMeter:
    """Counts and times the users' own sortition checks (`select` in the state machine)."""

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0
        self._select = ballot_module.select

    def __enter__(self) -> SortitionMeter:
        def counted(*args, **kwargs):
            start = time.process_time()
            try:
                return self._select(*args, **kwargs)
            finally:
                self.calls += 1
                self.seconds += time.process_time() - start

        ballot_module.select = counted
        return self

    def __exit__(self, *exc) -> None:
        ballot_module.select = self._select


def sweep(seeds: range) -> None:
    rounds = conflicts = 0
    failed = []
    start = time.process_time()
    for seed in seeds:
        config = adversarial(seed)
        result = Simulation(config).run()
        rounds += max(result.heights[i] for i in result.honest_nodes)
        conflicts += result.conflicting_final
        if check(result, config):
            failed.append(seed)
    print(f"sweep: {len(seeds)} adversarial runs (seeds {seeds.start}-{seeds.stop - 1}), "
          f"{rounds} rounds simulated, {time.process_time() - start:.1f} CPU s")
    if failed:
        print(f"sweep: seeds with a failed check (rerun adversarial(seed)): {failed}")
    print(f"rounds simulated: {rounds}")
    print(f"RESULT sim_conflicting_final {conflicts}")


def _long_one(seed: int) -> tuple[int, int, int, int, list[str], float]:
    config = long_run(seed)
    result = Simulation(config).run()
    rounds = max(result.heights[i] for i in result.honest_nodes)
    problems = check(result, config)
    return seed, rounds, result.conflicting_final, len(result.settled), problems, result.cpu_seconds


def long(min_rounds: int) -> None:
    """Batches of seeds on every core until `min_rounds` rounds are simulated."""
    rounds = conflicts = settled = runs = 0
    failed: list[tuple[int, list[str]]] = []
    cpu = 0.0
    start = time.monotonic()
    seed = 0
    workers = os.cpu_count() or 1
    with multiprocessing.Pool(workers) as pool:
        while rounds < min_rounds:
            batch = range(seed, seed + 4 * workers)
            seed = batch.stop
            for s, r, c, settled_here, problems, seconds in pool.imap(_long_one, batch):
                runs += 1
                rounds += r
                conflicts += c
                settled += settled_here
                cpu += seconds
                if problems:
                    failed.append((s, problems))
            print(f"long: {runs} runs, {rounds} rounds, {conflicts} conflicting FINAL, "
                  f"{time.monotonic() - start:.0f} s", flush=True)
    print(f"long: {runs} runs (seeds 0-{seed - 1}) of long_run(seed), {rounds} rounds, "
          f"{cpu:.0f} CPU s on {workers} cores")
    for s, problems in failed:
        print(f"long: seed {s} failed a check (rerun long_run({s})): {problems}")
    print(f"RESULT sim_rounds {rounds}")
    print(f"RESULT sim_conflicting_final {conflicts}")
    print(f"RESULT sim_tasks_settled {settled}")


def common_case(seeds: range, rounds: int) -> None:
    steps = []
    for seed in seeds:
        result = Simulation(SimConfig(seed=seed, nodes=10, target_height=rounds)).run()
        steps += result.steps
    print(f"common case: {len(steps)} decisions, steps per round: "
          f"min {min(steps)} median {statistics.median(steps)} max {max(steps)}")
    print(f"RESULT sim_steps_common_case {statistics.median(steps):g}")


def members(users: int, tau: int) -> float:
    """Expected distinct members of a committee of tau sub-users among `users` equal users."""
    return users * (1 - math.exp(-tau / users))


def cost(users: int, rounds: int, nodes: int = 20) -> tuple[float, float, float]:
    """(whole network, observer node) CPU seconds per round, and the observer's CPU per
    verified vote."""
    config = SimConfig(
        seed=1, nodes=nodes, users=users, target_height=rounds, observer=True,
        network=NetworkModel(min_delay_ms=5, max_delay_ms=60),
    )
    sim = Simulation(config)
    with SortitionMeter() as meter:
        result = sim.run()
    done = min(result.heights[i] for i in result.honest_nodes)
    assert done >= rounds and result.conflicting_final == 0, result.describe()
    per_round = result.cpu_seconds / rounds
    node = result.observer_cpu_seconds / rounds
    verified = result.observer_verifications["vote"] / rounds
    p = config.params
    expected = 3 * members(users, p.tau_step) + members(users, p.tau_final)
    rest = (result.cpu_seconds - meter.seconds) / rounds
    print(f"users {users:>6} on {nodes} nodes: network {per_round:6.2f} CPU s per round = "
          f"{meter.seconds / rounds:6.2f} users' own sortition checks "
          f"({meter.calls / rounds:,.0f}/round) + {rest:5.2f} the rest")
    print(f"             observer node (1 user): {node:6.3f} CPU s per round, "
          f"{verified:,.0f} votes verified/round (committee members in 3 steps + final: "
          f"{expected:,.0f}), {1e6 * node / verified:.0f} us per verified vote")
    print(f"RESULT sim_cpu_per_round_{users} {per_round:.3f}")
    print(f"RESULT node_cpu_per_round_{users} {node:.3f}")
    return per_round, node, node / verified


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="fewer seeds and rounds (under a minute)")
    mode.add_argument("--long", action="store_true",
                      help="at least 10,000 rounds of long adversarial runs "
                           "(about 10 minutes on 2 cores)")
    parser.add_argument("--rounds", type=int, default=10_000, help="--long: rounds to simulate")
    args = parser.parse_args()
    if args.long:
        long(args.rounds)
        return
    if args.quick:
        sweep(range(6))
        common_case(range(1), 8)
        costs = {u: cost(u, 1) for u in (100, 1_000, 10_000)}
    else:
        sweep(range(200))
        common_case(range(10), 20)
        costs = {u: cost(u, r) for u, r in ((100, 5), (1_000, 3), (10_000, 2))}
    (net_1k, node_1k, vote_1k), (net_10k, node_10k, vote_10k) = costs[1_000], costs[10_000]
    print(f"observer CPU per verified vote, 10,000 / 1,000 users: {vote_10k / vote_1k:.2f}")
    print(f"RESULT sim_node_cost_ratio_10k_1k {node_10k / node_1k:.2f}")
    print(f"RESULT node_vote_cpu_per_round_s {node_10k:.3f}")
    print(f"RESULT sim_cost_ratio_10k_1k {net_10k / net_1k:.2f}")


if __name__ == "__main__":
    main()
