"""Fuzzing campaign: mutated inputs to the decoders, the RPC dispatcher and the gossip validators.

    python bench/fuzz.py [--quick] [--seed S] [--count N] [--targets decode,rpc,gossip]
    python bench/fuzz.py --targets rpc --seed S --replay INDEX

Every input is made from (target, seed, index) alone (wekacoin/testing/fuzz_targets.py and
fuzz_rpc.py), by mutators (fuzz_mutate.py, fuzz_json.py, fuzz_resign.py) from a corpus of
valid encodings the project's own code produced (fuzz_corpus.py), and checked in process.
The indices of a target are cut into segments of SEGMENT; each worker process takes whole
segments, so the workers fuzz disjoint slices of one seeded stream, and a target's state
(mempool, caches, blobs) is fresh at every segment start whichever worker runs it.

A crash is an exception a target must not raise (decode: anything but DecodeError; rpc: an
exception from `handle`, an internal error -32603 or an invalid JSON-RPC answer; gossip: any
exception), an input taking more than fuzz_run.SLOW_S (2 s) of CPU, or bytes that decode but
are not the canonical encoding of what they decode to. An input still running after HANG_S is
a hang (its worker is killed), one whose worker dies is a crash too; the worker is replaced
and the rest of that segment skipped. Crashes are told apart by exception type and innermost
wekacoin frame; the first input of each is saved under --out with the command that replays
it.

Prints per target its inputs, distinct crashes and inputs/s, then
`RESULT fuzz_<target>_inputs`, `RESULT fuzz_<target>_crashes`, and `RESULT fuzz_crashes`.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import queue
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wekacoin.testing.fuzz_corpus import build_scenario  # noqa: E402
from wekacoin.testing.fuzz_run import (  # noqa: E402
    SEGMENT,
    TARGETS,
    Crash,
    SegmentResult,
    make_target,
    replay,
    run_range,
)
from wekacoin.testing.fuzz_targets import Finding  # noqa: E402

QUICK_COUNT = 20_000

HANG_S = 60.0
"""An input still running after this long is a hang: its worker is killed, the input saved."""


def _worker_main(slot: int, workroot: str, jobs: Any, results: Any, progress: Any) -> None:
    """Run segments from `jobs` until None; `progress[slot]` holds (target number, segment
    start, index, monotonic ns when that input started; 0 when idle) for the hang watchdog."""
    logging.getLogger("wekacoin").setLevel(logging.CRITICAL)
    workdir = Path(tempfile.mkdtemp(dir=workroot))
    scenario = build_scenario()
    targets: dict[str, Any] = {}
    row = slot * 4
    while (job := jobs.get()) is not None:
        name, seed, start, stop = job
        if name not in targets:
            targets[name] = make_target(name, scenario, workdir / name)

        def started(index: int, number: int = TARGETS.index(name), start: int = start) -> None:
            progress[row:row + 4] = [number, start, index, time.monotonic_ns()]

        result = run_range(targets[name], seed, start, stop, started)
        progress[row + 3] = 0
        results.put((slot, job, result))


class Workers:
    """Worker processes pulling segments from one queue: disjoint slices of the stream."""

    def __init__(self, count: int, workroot: str) -> None:
        self.ctx = multiprocessing.get_context("fork")
        self.workroot = workroot
        self.jobs = self.ctx.Queue()
        self.results = self.ctx.Queue()
        self.progress = self.ctx.Array("q", 4 * count, lock=False)
        self.procs = [self._start(slot) for slot in range(count)]

    def _start(self, slot: int) -> Any:
        proc = self.ctx.Process(target=_worker_main, daemon=True, args=(
            slot, self.workroot, self.jobs, self.results, self.progress))
        proc.start()
        return proc

    def stuck(self) -> list[tuple[int, str, int, int, str]]:
        """(slot, target, segment start, index, what happened) of each input that has run
        for over HANG_S, or whose worker died under it."""
        now = time.monotonic_ns()
        out = []
        for slot, proc in enumerate(self.procs):
            number, start, index, began = self.progress[slot * 4:slot * 4 + 4]
            if not began and not proc.is_alive():
                raise RuntimeError(f"worker {slot} exited ({proc.exitcode}) outside any input")
            if began and not proc.is_alive():
                out.append((slot, TARGETS[number], start, index, f"WorkerDied({proc.exitcode})"))
            elif began and now - began > HANG_S * 1e9:
                out.append((slot, TARGETS[number], start, index, "Hang"))
        return out

    def replace(self, slot: int) -> None:
        """Kill the worker in `slot` (it hangs, or died) and start another in its place."""
        self.procs[slot].kill()
        self.procs[slot].join()
        self.progress[slot * 4 + 3] = 0
        self.procs[slot] = self._start(slot)

    def close(self) -> None:
        for _ in self.procs:
            self.jobs.put(None)
        for proc in self.procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()


def repro_command(target: str, seed: int, index: int) -> str:
    return f"python bench/fuzz.py --targets {target} --seed {seed} --replay {index}"


def save(out: Path, target: str, seed: int, crash: Crash) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{target}-{crash.finding.kind}-{crash.finding.where}")
    out.mkdir(parents=True, exist_ok=True)
    data_path = out / f"{slug[:150]}.bin"
    data_path.write_bytes(crash.data)
    data_path.with_suffix(".txt").write_text(
        f"{repro_command(target, seed, crash.index)}\n"
        f"target {target}, seed {seed}, index {crash.index}, input {crash.label!r}, "
        f"token {crash.token!r}, {len(crash.data)} bytes in {data_path.name}; "
        f"{crash.count} inputs crashed here\n\n{crash.finding.detail}\n"
    )
    return data_path


def run_target(workers: Workers, name: str, args: argparse.Namespace,
               hang_target: Any) -> tuple[SegmentResult, float]:
    """All segments of one target; an input that hangs ends its segment there."""
    pending = {(name, args.seed, start, min(start + SEGMENT, args.count))
               for start in range(0, args.count, SEGMENT)}
    for job in sorted(pending, key=lambda j: j[2]):
        workers.jobs.put(job)
    total = SegmentResult()
    began = time.perf_counter()
    while pending:
        try:
            _, job, part = workers.results.get(timeout=1.0)
        except queue.Empty:
            for slot, target, start, index, what in workers.stuck():
                workers.replace(slot)
                case = hang_target(target).case(args.seed, index)
                found = Finding(what, hang_target(target).describe(case),
                                f"{what}: the input ran over {HANG_S:.0f} s or its worker died; "
                                f"the rest of its segment ({start}-{start + SEGMENT - 1}) "
                                "was skipped")
                total.merge(SegmentResult(index - start + 1, 0.0, {found.key: Crash(
                    found, index, case.label, case.data, case.token)}))
                pending = {j for j in pending if j[2] != start}
            continue
        total.merge(part)
        pending.discard(job)
    return total, time.perf_counter() - began


def campaign(args: argparse.Namespace, targets: list[str]) -> int:
    workroot = tempfile.mkdtemp(prefix="wekacoin-fuzz-work-")
    results: dict[str, SegmentResult] = {}
    elapsed: dict[str, float] = {}
    made: dict[str, Any] = {}

    def hang_target(name: str) -> Any:  # to make a hung input again, in this process
        if name not in made:
            made[name] = make_target(name, build_scenario(), Path(workroot) / "main" / name)
        return made[name]

    workers = Workers(args.workers, workroot)
    try:
        for name in targets:
            results[name], elapsed[name] = run_target(workers, name, args, hang_target)
    finally:
        workers.close()
        for target in made.values():
            target.close()
        shutil.rmtree(workroot, ignore_errors=True)
    out = Path(args.out)
    total_crashes = 0
    for name in targets:
        r = results[name]
        rate = r.inputs / elapsed[name] if elapsed[name] else 0.0
        print(f"{name}: {r.inputs:,} inputs, {len(r.crashes)} distinct crashes, "
              f"{rate:,.0f} inputs/s ({elapsed[name]:.1f} s on {args.workers} workers, "
              f"a worker's memory at most {r.rss_mib} MiB)")
        for crash in sorted(r.crashes.values(), key=lambda c: c.index):
            path = save(out, name, args.seed, crash)
            print(f"  {crash.count}x {crash.finding.key} (first: input {crash.label!r}, "
                  f"index {crash.index}) saved as {path}")
            print(f"    reproduce: {repro_command(name, args.seed, crash.index)}")
        total_crashes += len(r.crashes)
    for name in targets:
        print(f"RESULT fuzz_{name}_inputs {results[name].inputs}")
        print(f"RESULT fuzz_{name}_crashes {len(results[name].crashes)}")
    print(f"RESULT fuzz_crashes {total_crashes}")
    return total_crashes


def replay_one(args: argparse.Namespace, name: str) -> int:
    """Make input `args.replay` again and feed it to a fresh target; if it passes there,
    replay its segment up to it (the state the campaign had)."""
    with tempfile.TemporaryDirectory(prefix="wekacoin-fuzz-replay-") as workdir:
        target = make_target(name, build_scenario(), Path(workdir))
        try:
            case, found, alone = replay(target, args.seed, args.replay)
        finally:
            target.close()
    print(f"{name} seed {args.seed} index {args.replay}: input {case.label!r}, "
          f"token {case.token!r}, {len(case.data)} bytes: {case.data[:200]!r}")
    if found is None:
        print("no crash, alone nor after the inputs of its segment")
        return 0
    print(f"{found.key} ({'alone' if alone else 'after the inputs of its segment'})")
    print(found.detail)
    return 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_COUNT:,} inputs per target (under a minute)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=None,
                        help="inputs per target (default 1,000,000)")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help=f"comma-separated, of {', '.join(TARGETS)}")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default="/tmp/wekacoin-fuzz", help="where crashes are saved")
    parser.add_argument("--replay", type=int, metavar="INDEX",
                        help="replay one input of one target and print its traceback")
    args = parser.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    unknown = set(targets) - set(TARGETS)
    if unknown or not targets:
        parser.error(f"targets are {', '.join(TARGETS)}")
    if args.replay is not None:
        if len(targets) != 1:
            parser.error("--replay needs one target")
        sys.exit(replay_one(args, targets[0]))
    if args.count is None:
        args.count = QUICK_COUNT if args.quick else 1_000_000
    campaign(args, targets)


if __name__ == "__main__":
    main()
