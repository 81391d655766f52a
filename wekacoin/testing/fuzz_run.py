"""Running fuzz targets: ranges of a seeded stream of inputs, segment by segment, and the
replay of one input. The state at an index depends only on the inputs of its segment before
it, whichever worker runs it."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import trio

from wekacoin.testing.fuzz_corpus import Scenario
from wekacoin.testing.fuzz_rpc import RpcTarget
from wekacoin.testing.fuzz_targets import Case, DecodeTarget, Finding, GossipTarget

SEGMENT = 5_000
"""Indices per segment: a target's state is fresh at the start of each."""
SLOW_S = 2.0
"""An input that takes more CPU time than this is reported (a denial of service). CPU time,
the process's (its threads' included), not wall time: on a busy machine a process can wait
seconds for a core."""


@dataclass
class Crash:
    finding: Finding
    index: int
    """The first index that produced it."""
    label: str
    data: bytes
    token: str | None
    count: int = 1


@dataclass
class SegmentResult:
    inputs: int = 0
    seconds: float = 0.0
    crashes: dict[str, Crash] = field(default_factory=dict)
    rss_mib: int = 0
    """Memory of the process that ran the segment, at its end (the most, once merged): the
    state a target keeps grows within a segment only."""

    def merge(self, other: SegmentResult) -> None:
        self.inputs += other.inputs
        self.seconds += other.seconds
        self.rss_mib = max(self.rss_mib, other.rss_mib)
        for key, crash in other.crashes.items():
            mine = self.crashes.get(key)
            if mine is None:
                self.crashes[key] = dataclasses.replace(crash)
            else:
                mine.count += crash.count
                if crash.index < mine.index:
                    mine.index, mine.label, mine.data, mine.token = (
                        crash.index, crash.label, crash.data, crash.token)


async def timed_check(target: Any, case: Case) -> Finding | None:
    """`target.check(case)`, or a Slow finding if it passed but took more than SLOW_S of CPU."""
    wall, cpu = time.perf_counter(), time.process_time()
    found = await target.check(case)
    spent = time.process_time() - cpu
    if found is None and spent > SLOW_S:
        found = Finding("Slow", target.describe(case), f"{spent:.1f} s of CPU for one input "
                                                       f"({time.perf_counter() - wall:.1f} s)")
    return found


def _rss_mib() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE") // 2**20


def run_range(target: Any, seed: int, start: int, stop: int,
              on_input: Callable[[int], None] | None = None) -> SegmentResult:
    """Feed inputs [start, stop) to `target`, resetting it at every segment boundary (and at
    `start`, which must be one unless a single input is replayed); `on_input(index)` is
    called before each input is checked."""
    result = SegmentResult()

    async def loop() -> None:
        began = time.perf_counter()
        for index in range(start, stop):
            if index == start or index % SEGMENT == 0:
                target.reset()
            case = target.case(seed, index)
            if on_input is not None:
                on_input(index)
            found = await timed_check(target, case)
            result.inputs += 1
            if found is not None:
                known = result.crashes.get(found.key)
                if known is None:
                    result.crashes[found.key] = Crash(found, index, case.label, case.data,
                                                      case.token)
                else:
                    known.count += 1
        result.seconds = time.perf_counter() - began
        result.rss_mib = _rss_mib()

    trio.run(loop)
    return result


def replay(target: Any, seed: int, index: int) -> tuple[Case, Finding | None, bool]:
    """Input `index` fed to a fresh target, then (if that passes) after the inputs of its
    segment that came before it, as in the campaign. Returns the input, what it found and
    whether it found it alone."""
    case = target.case(seed, index)

    async def one(reset: bool) -> Finding | None:
        if reset:
            target.reset()
        return await timed_check(target, case)

    found = trio.run(one, True)
    if found is not None:
        return case, found, True
    start = index - index % SEGMENT
    if start == index:
        return case, None, False
    run_range(target, seed, start, index)
    return case, trio.run(one, False), False


def make_target(name: str, scenario: Scenario, workdir: Path) -> Any:
    if name == "decode":
        return DecodeTarget(scenario)
    if name == "rpc":
        return RpcTarget(scenario, workdir)
    if name == "gossip":
        return GossipTarget(scenario, workdir)
    raise ValueError(f"no target {name!r}")


TARGETS = ("decode", "rpc", "gossip")
