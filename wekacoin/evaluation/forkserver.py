"""The trusted fork server: pre-warmed once, it keeps confined model processes ready and gives
each of them one model.

    python -m wekacoin.evaluation.forkserver ENTRY_MODULE SCRATCH_ROOT [PRELOAD_MODULE...]

Started by `sandbox.ForkServerSandbox`, usually inside bubblewrap. It imports the entry module
(numpy, onnxruntime, onnx already loaded) and runs its `warm_up()`, compiles the seccomp filter,
probes which confinement steps work here, and says hello. Then it serves requests from stdin,
any number of jobs at once:
- "put"/"drop": keep or forget a feature array (processes get it through fork, not a pipe);
- "pool": how many spare model processes to keep ready;
- "run": a job (args, limits, keys, model bytes); its answer goes back, tagged with the job's
  id, as soon as it is in: jobs finish in any order.
Model processes (`model_process.py`) are forked ahead ("spares") and get ready and confined
while no job needs them, at idle priority where the system allows, for the limits of the jobs
so far (a job can lower a spare's limits, not raise them). A job takes a ready spare that
fits it, else one still getting ready, else a process forked for it (as is every job that
needs trusted imports the server did not make: `entry.prepare_key`). The server waits for
the answer until the job's wall-clock deadline, then kills the process's group whatever
happened, and relays the answer frame, unread, to the parent. The server never parses model
bytes or child output beyond frame lengths, and never runs untrusted code. It refills the pool
when it has nothing else to do, and reaps killed processes as they finish dying.
"""

from __future__ import annotations

import gc
import importlib
import math
import os
import select
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from wekacoin.evaluation import wire
from wekacoin.evaluation.confine import ChildLimits, child_uid, drop_privileges
from wekacoin.evaluation.model_process import ModelProcess, Profile, Setup, State, exit_facts
from wekacoin.evaluation.seccomp_filter import compile_filter, install_filter

MAX_REQUEST_BYTES = 2 * 1024**3
PREPARE_SECONDS = 120.0  # trusted set-up of a process (imports) before its model's clock starts
REAP_POLL_SECONDS = 0.02  # how often killed processes are looked for while some are dying
STDIN, STDOUT = 0, 1


@dataclass
class _Job:
    meta: dict[str, Any]
    request: wire.Frame | None  # the request frame is the job as the model process gets it
    received: float  # perf_counter
    process: ModelProcess | None = None
    handed: float = 0.0
    retried: bool = False

    @property
    def limits(self) -> ChildLimits:
        return ChildLimits(**self.meta["limits"])


class ForkServer:
    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.prepare_key = getattr(setup.entry, "prepare_key", lambda args: None)
        self.data: dict[str, np.ndarray] = {}
        self.profile: Profile | None = None  # what spares are forked for
        self.spare_target = 1
        self.spares: list[ModelProcess] = []  # not claimed by a job, oldest first
        self.jobs: dict[int, _Job] = {}  # by the pid of the process that has them
        self.dead: list[ModelProcess] = []  # killed, not yet reaped
        self.by_fd: dict[int, ModelProcess] = {}
        self.poller = select.poll()
        self.forks = 0
        self.children_cpu = 0.0  # seconds, of the processes reaped so far
        self.refill_failed = False  # a spare could not be forked: wait for the next job

    def serve(self) -> None:
        self.poller.register(STDIN, select.POLLIN)
        while True:
            events = self.poller.poll(self._timeout_ms())
            for fd, _ in events:
                if fd == STDIN:
                    if not self._on_request():
                        self._shut_down()
                        return
                elif (process := self.by_fd.get(fd)) is not None:
                    self._on_process(process)
            self._expire()
            self._reap(block=False)
            if not events:  # nothing else to do: the pool's turn
                self._refill()

    # -- requests --

    def _on_request(self) -> bool:
        frame = wire.read_frame(STDIN, MAX_REQUEST_BYTES)
        if frame is None:
            return False
        meta, arrays = wire.decode(frame)
        op = meta["op"]
        if op == "put":
            self.data[meta["key"]] = arrays[0]
            self._retire(lambda p: True)  # none of them has it
        elif op == "drop":
            self.data.pop(meta["key"], None)
        elif op == "pool":
            self.spare_target = int(meta["spares"])
        elif op == "run":
            self._dispatch(_Job(meta, frame, time.perf_counter()))
        else:
            raise ValueError(f"unknown request {op!r}")
        return True

    def _dispatch(self, job: _Job) -> None:
        """Give the job a process: a ready spare that fits, else one still getting ready (a
        spare that could not get ready last: its failure is the job's answer), else a fresh
        one."""
        limits, keys = job.limits, frozenset(job.meta["keys"])
        self.refill_failed = False
        prepared = self.prepare_key(job.meta["args"])
        if prepared is None:  # spares serve it: let them serve the jobs to come
            self._expect(limits)
        fitting = [p for p in self.spares if p.serves(limits, prepared, keys)]
        rank = {State.READY: 0, State.PREPARING: 1, State.FAILED: 2}
        fitting.sort(key=lambda p: rank[p.state])  # stable: oldest first within a state
        if fitting:
            process = fitting[0]
            self.spares.remove(process)
            if process.state is State.FAILED:
                self._answer(job, process.failure)
                return
            process.claim(self.setup.idle_prep)
        else:
            try:
                process = self._fork(
                    Profile(limits, prepared),
                    claimed=True,
                    prepare_args=job.meta["args"] if prepared is not None else None,
                )
            except OSError as e:  # out of processes or memory: this machine's trouble
                self._answer(job, {"status": "sandbox_error", "detail": f"fork failed: {e}"})
                return
        job.process = process
        self.jobs[process.pid] = job
        if process.state is State.READY:
            self._hand_over(process, job)
        else:
            process.deadline = time.monotonic() + PREPARE_SECONDS

    def _expect(self, limits: ChildLimits) -> None:
        """Spares from now on can take jobs under `limits` (the first job's, widened as
        needed), and those that cannot go."""
        if self.profile is None:
            self.profile = Profile(limits)
        elif not self.profile.serves(limits, None):
            profile = self.profile = self.profile.widened(limits)
            self._retire(lambda p: p.profile != profile)

    def _hand_over(self, process: ModelProcess, job: _Job) -> None:
        assert job.request is not None
        try:
            process.hand_over(job.request, job.limits.wall_seconds, job.meta["max_result"])
        except OSError:  # it died after saying READY: our fault, not the model's
            self.jobs.pop(process.pid)
            self._discard(process)
            if job.retried:
                self._answer(job, {"status": "sandbox_error"})
            else:
                job.retried = True
                self._dispatch(job)
            return
        job.handed = time.perf_counter()
        job.request = None  # the model's bytes are the process's now

    # -- model processes --

    def _on_process(self, process: ModelProcess) -> None:
        job = self.jobs.get(process.pid)
        try:
            frame = process.on_readable()
        except EOFError:
            assert process.reader is not None and job is not None
            if process.reader.started:
                answer = {"status": "bad_output", "detail": "stream ended inside a frame"}
            else:
                answer = {"status": "died"}
            self._finish(process, job, answer)
            return
        except wire.WireError as e:
            assert job is not None
            self._finish(process, job, {"status": "bad_output", "detail": str(e)})
            return
        if frame is not None:
            assert job is not None
            self._finish(process, job, {"status": "done"}, frame)
        elif process.state is State.READY and job is not None:
            self._hand_over(process, job)
        elif process.state is State.FAILED:
            self._fail(process, job)

    def _fail(self, process: ModelProcess, job: _Job | None) -> None:
        """A process could not get ready: why becomes the answer of its job, now or later."""
        failure = process.failure
        self._discard(process)
        if failure.get("status") == "sandbox_error":  # how it ended tells why
            failure.update(self._wait_dead(process))
        if job is not None:
            self.jobs.pop(process.pid)
            self._answer(job, failure)

    def _finish(
        self,
        process: ModelProcess,
        job: _Job,
        answer: dict[str, Any],
        frame: wire.Frame | None = None,
    ) -> None:
        self.jobs.pop(process.pid)
        if frame is None:
            self._discard(process)
            if answer["status"] != "timeout":  # how it ended tells why
                answer.update(self._wait_dead(process))
        else:  # it waits to be killed: its scratch dir is locked now, its teardown can wait
            process.lock_scratch()  # until its answer is on the way
        if job.handed:
            answer["timing"] = {
                # Where a job's time goes, as the server sees it (milliseconds): waiting for a
                # process to be ready (next to none when a spare was), then the model's run.
                "queue": (job.handed - job.received) * 1e3,
                "model": (time.perf_counter() - job.handed) * 1e3,
            }
        self._answer(job, answer, frame)
        self._discard(process)

    def _answer(
        self, job: _Job, answer: dict[str, Any], frame: wire.Frame | None = None
    ) -> None:
        reply = {"job": job.meta["job"], **answer}
        frame = reply.pop("frame", frame)
        # Running totals, for benchmarks: CPU of this server, and of its reaped processes.
        reply.setdefault("timing", {}).update(
            server_cpu_total=time.process_time() * 1e3, children_cpu_total=self.children_cpu * 1e3
        )
        relayed = [np.frombuffer(frame, np.uint8)] if frame else []  # a view: not copied
        wire.write_parts(STDOUT, wire.encode_parts(reply, relayed))

    def _expire(self) -> None:
        now = time.monotonic()
        for job in list(self.jobs.values()):
            process = job.process
            assert process is not None
            if process.state in (State.PREPARING, State.BUSY) and now >= process.deadline:
                self._finish(process, job, {"status": "timeout"})

    def _fork(
        self,
        profile: Profile,
        *,
        claimed: bool = False,
        prepare_args: dict[str, Any] | None = None,
    ) -> ModelProcess:
        self.forks += 1
        process = ModelProcess(
            self.setup, self.forks, profile, self.data, claimed=claimed, prepare_args=prepare_args
        )
        self.by_fd[process.answer_r] = process
        self.poller.register(process.answer_r, select.POLLIN)
        return process

    def _refill(self) -> None:
        if self.profile is not None and self._pool_short():
            try:
                self.spares.append(self._fork(self.profile))
            except OSError as e:
                print(f"fork server: no spare forked ({e}); next try at the next job",
                      file=sys.stderr)
                self.refill_failed = True

    def _pool_short(self) -> bool:
        return (
            self.profile is not None
            and len(self.spares) < self.spare_target
            and not self.refill_failed
        )

    def _retire(self, which: Any) -> None:
        for process in [p for p in self.spares if which(p)]:
            self.spares.remove(process)
            self._discard(process)

    def _discard(self, process: ModelProcess) -> None:
        """Kill it and leave it to be reaped."""
        if process.killed:
            return
        if self.by_fd.pop(process.answer_r, None) is not None:
            self.poller.unregister(process.answer_r)
        process.kill()
        self.dead.append(process)

    def _wait_dead(self, process: ModelProcess) -> dict[str, Any]:
        """Reap one killed process now, for its exit status."""
        self.dead.remove(process)
        _, status = self._wait(process, 0)
        return exit_facts(status)

    def _wait(self, process: ModelProcess, options: int) -> tuple[int, int]:
        """waitpid, counting the CPU time of the process it reaps."""
        pid, status, usage = os.wait4(process.pid, options)
        if pid:
            self.children_cpu += usage.ru_utime + usage.ru_stime
            process.remove_scratch()
        return pid, status

    def _reap(self, *, block: bool) -> None:
        for process in list(self.dead):
            if self._wait(process, 0 if block else os.WNOHANG)[0]:
                self.dead.remove(process)

    def _timeout_ms(self) -> int:
        if self._pool_short():
            return 0
        due = [
            job.process.deadline
            for job in self.jobs.values()
            if job.process is not None and job.process.state in (State.PREPARING, State.BUSY)
        ]
        wait = max(0.0, min(due) - time.monotonic()) if due else math.inf
        if self.dead:
            wait = min(wait, REAP_POLL_SECONDS)
        return -1 if wait == math.inf else math.ceil(wait * 1000)

    def _shut_down(self) -> None:
        for job in list(self.jobs.values()):
            if job.process is not None:
                self._discard(job.process)
        self._retire(lambda p: True)
        self._reap(block=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def probe(seccomp_program: bytes | None) -> dict[str, Any]:
    """Which confinement steps work here, checked in a throwaway child."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        facts: dict[str, Any] = {"uid_drop": False, "seccomp": False, "idle_prep": False}
        try:
            try:  # can a spare prepare as SCHED_IDLE and come back? (needs CAP_SYS_NICE)
                os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
                facts["idle_prep"] = True
            except OSError:
                facts["idle_prep"] = False
            if os.geteuid() == 0:
                try:
                    drop_privileges(child_uid(0))
                    facts["uid_drop"] = os.getuid() == child_uid(0)
                except OSError:
                    facts["uid_drop"] = False  # e.g. a user namespace that maps only us
            if seccomp_program is not None:
                install_filter(seccomp_program)
                try:
                    socket.socket().close()
                except PermissionError:
                    facts["seccomp"] = True
            _write_all(w, wire.encode(facts))
        finally:
            os._exit(0)
    os.close(w)
    frame = wire.read_frame(r, 1 << 16, time.monotonic() + 30)
    os.close(r)
    os.waitpid(pid, 0)
    if frame is None:
        return {"uid_drop": False, "seccomp": False, "idle_prep": False}
    return wire.decode(frame)[0]


def _net_isolated() -> bool:
    with open("/proc/net/dev") as f:
        interfaces = [line.split(":")[0].strip() for line in f.readlines()[2:]]
    return interfaces == ["lo"]


def main(argv: list[str]) -> None:
    entry = importlib.import_module(argv[0])
    scratch_root = argv[1]
    for name in argv[2:]:
        importlib.import_module(name)
    warm_up = getattr(entry, "warm_up", None)
    if warm_up is not None:
        warm_up()
    program = compile_filter()
    facts = probe(program)
    facts.update(
        net_isolated=_net_isolated(),
        root_readonly=bool(os.statvfs("/").f_flag & os.ST_RDONLY),
        pid=os.getpid(),
    )
    server = ForkServer(
        Setup(
            entry,
            scratch_root,
            program if facts["seccomp"] else None,
            facts["uid_drop"],
            facts["idle_prep"],
        )
    )
    gc.collect()
    gc.freeze()  # keep the collector from touching, and so copying, the server's pages per child
    _write_all(STDOUT, wire.encode({"op": "hello", **facts}))
    server.serve()


if __name__ == "__main__":
    main(sys.argv[1:])
