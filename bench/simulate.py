"""The consensus simulator at scale: safety and liveness over a sweep of adversarial seeds,
the steps of the common case, and the CPU cost of a round as the population grows.

    python bench/simulate.py [--quick]

- Sweep: `sim_scenarios.adversarial(seed)` runs (up to 20 % Byzantine stake, loss,
  duplicates, reordering, a partition that heals, crashes with restarts).
  RESULT sim_conflicting_final = FINAL blocks that conflict with another FINAL block at the
  same height, over all runs (must be 0).
- Common case: honest nodes on a network with 5-60 ms delays.
  RESULT sim_steps_common_case = median BA* steps per round (Reduction 2 + BinaryBA* + final).
- Cost: 100, 1,000 and 10,000 users of equal stake on 20 simulated nodes, the paper's
  committees (tau_step 2000, tau_final 10000, tau_proposer 26). CPU seconds per round of the
  whole simulated network, split into the users' own sortition checks (every user evaluates
  its VRF for every step: O(users), inherent to sortition) and the rest (signing, verifying
  each distinct vote once, counting it on every node: O(committee x nodes)).
  RESULT sim_cost_ratio_10k_1k = CPU per round at 10,000 users / at 1,000 users.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import wekacoin.consensus.ballot as ballot_module  # noqa: E402
from wekacoin.testing.sim import SimConfig, Simulation  # noqa: E402
from wekacoin.testing.sim_net import NetworkModel  # noqa: E402
from wekacoin.testing.sim_scenarios import adversarial, check  # noqa: E402


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


def common_case(seeds: range, rounds: int) -> None:
    steps = []
    for seed in seeds:
        result = Simulation(SimConfig(seed=seed, nodes=10, target_height=rounds)).run()
        steps += result.steps
    print(f"common case: {len(steps)} decisions, steps per round: "
          f"min {min(steps)} median {statistics.median(steps)} max {max(steps)}")
    print(f"RESULT sim_steps_common_case {statistics.median(steps):g}")


def cost(users: int, rounds: int, nodes: int = 20) -> float:
    config = SimConfig(
        seed=1, nodes=nodes, users=users, target_height=rounds,
        network=NetworkModel(min_delay_ms=5, max_delay_ms=60),
    )
    sim = Simulation(config)
    with SortitionMeter() as meter:
        result = sim.run()
    done = min(result.heights[i] for i in result.honest_nodes)
    assert done >= rounds and result.conflicting_final == 0, result.describe()
    per_round = result.cpu_seconds / rounds
    votes = result.verifications["vote"] / rounds
    print(f"users {users:>6} on {nodes} nodes: {per_round:6.2f} CPU s per round = "
          f"{meter.seconds / rounds:6.2f} own sortition checks ({meter.calls / rounds:,.0f}/round) "
          f"+ {(result.cpu_seconds - meter.seconds) / rounds:5.2f} the rest "
          f"({votes:,.0f} distinct votes verified/round)")
    print(f"RESULT sim_cpu_per_round_{users} {per_round:.3f}")
    return per_round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer seeds and rounds (under a minute)")
    args = parser.parse_args()
    if args.quick:
        sweep(range(6))
        common_case(range(1), 8)
        costs = {u: cost(u, 1) for u in (100, 1_000, 10_000)}
    else:
        sweep(range(200))
        common_case(range(10), 20)
        costs = {u: cost(u, r) for u, r in ((100, 5), (1_000, 3), (10_000, 2))}
    print(f"RESULT sim_cost_ratio_10k_1k {costs[10_000] / costs[1_000]:.2f}")


if __name__ == "__main__":
    main()
