"""The simulated network: delays, loss, duplicates, reordering, partitions (all seeded)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Partition:
    """From `start_ms` until `end_ms` (the heal), only nodes of the same group can talk;
    messages sent across groups meanwhile are lost. Nodes in no group are isolated."""

    start_ms: int
    end_ms: int
    groups: tuple[frozenset[int], ...]

    def separates(self, a: int, b: int, now: int) -> bool:
        if not self.start_ms <= now < self.end_ms:
            return False
        return not any(a in g and b in g for g in self.groups)


@dataclass(frozen=True, slots=True)
class NetworkModel:
    """Each message to each peer: lost with `drop_permille`, else delivered after a uniform
    delay in [min_delay_ms, max_delay_ms], and once more (another delay) with
    `duplicate_permille`. Independent delays reorder messages."""

    min_delay_ms: int = 5
    max_delay_ms: int = 60
    drop_permille: int = 0
    duplicate_permille: int = 0
    partitions: tuple[Partition, ...] = ()

    def reachable(self, a: int, b: int, now: int) -> bool:
        return not any(p.separates(a, b, now) for p in self.partitions)

    def delivery_times(self, rng: random.Random, a: int, b: int, now: int) -> list[int]:
        if not self.reachable(a, b, now) or rng.randrange(1000) < self.drop_permille:
            return []
        times = [now + rng.randint(self.min_delay_ms, self.max_delay_ms)]
        if rng.randrange(1000) < self.duplicate_permille:
            times.append(now + rng.randint(self.min_delay_ms, self.max_delay_ms))
        return times

    @property
    def healed_at(self) -> int:
        """When the last partition heals (0 if there is none)."""
        return max((p.end_ms for p in self.partitions), default=0)
