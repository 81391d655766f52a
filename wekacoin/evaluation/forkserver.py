"""The trusted fork server: pre-warmed once, it forks one fresh confined child per model.

    python -m wekacoin.evaluation.forkserver ENTRY_MODULE SCRATCH_ROOT [PRELOAD_MODULE...]

Started by `sandbox.ForkServerSandbox`, usually inside bubblewrap. It imports the entry module
(numpy, onnxruntime, onnx already loaded) and runs its `warm_up()`, compiles the seccomp filter,
probes which confinement steps work here, and says hello. Then, for each request on stdin:
- "put"/"drop": keep or forget a feature array (children get it through fork, not a pipe);
- "run": hand the job to a fresh child (its seccomp filter already in place), which calls
  `entry.prepare(args)`, confines itself (`confine.py`), calls `entry.run(args, blob,
  datasets)` and writes one frame back; the server waits for that frame until the wall-clock
  deadline, then kills the child's process group whatever happened, and relays the frame,
  unread, to the parent. The server itself never parses model bytes or child output beyond
  the frame length, and never runs untrusted code.
Each child serves exactly one job. To keep set-up off the critical path, the server forks the
next child (a "spare") while the current one runs; the spare warms up at idle priority and
installs its seccomp filter while it waits for its job. Killed children are reaped before the
next job. A spare that lacks a feature array put after its fork is replaced.
"""

from __future__ import annotations

import gc
import importlib
import os
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from wekacoin.errors import WekaError
from wekacoin.evaluation import wire
from wekacoin.evaluation.confine import ChildLimits, child_uid, confine, detach, drop_privileges
from wekacoin.evaluation.seccomp_filter import compile_filter, install_filter

MAX_REQUEST_BYTES = 2 * 1024**3
PREPARE_SECONDS = 120.0  # trusted set-up of a child (imports) before its model's clock starts
READY, NOT_READY = b"R", b"E"
STAMPS = struct.Struct("<dd")  # sent with READY: when the child got its job, when confined
STDIN, STDOUT = 0, 1


@dataclass
class _Child:
    """A forked, detached child waiting for its job on `job_w`, answering on `result_r`."""

    pid: int
    job_w: int
    result_r: int
    scratch: str
    keys: frozenset[str]  # the feature arrays it inherited
    uid: int | None  # its own uid once confined, or None where uids cannot be dropped


class ForkServer:
    def __init__(
        self,
        entry: ModuleType,
        scratch_root: str,
        seccomp_program: bytes | None,
        uid_drop: bool,
        idle_prep: bool,
    ) -> None:
        self.entry = entry
        self.scratch_root = scratch_root
        self.seccomp_program = seccomp_program
        self.uid_drop = uid_drop
        self.forks = 0
        self.children_cpu = 0.0  # seconds, of the children reaped so far
        self.data: dict[str, np.ndarray] = {}
        self.idle_prep = idle_prep
        self.spare: _Child | None = None
        self.dead: list[_Child] = []  # killed, not yet reaped

    def serve(self) -> None:
        while (frame := wire.read_frame(STDIN, MAX_REQUEST_BYTES)) is not None:
            meta, arrays = wire.decode(frame)
            if meta["op"] == "put":
                self.data[meta["key"]] = arrays[0]
            elif meta["op"] == "drop":
                self.data.pop(meta["key"], None)
            elif meta["op"] == "run":
                self.run(meta, frame)
            else:
                raise ValueError(f"unknown request {meta['op']!r}")
        if self.spare is not None:
            self._kill(self.spare)
        self._reap(block=True)

    def run(self, meta: dict[str, Any], request: bytes) -> None:
        """One job: the request frame itself is the child's job (args, limits, keys, blob)."""
        start = time.perf_counter()
        # Killed children finish dying on their own time (their teardown costs a few ms of
        # CPU); their scratch dirs were locked when they were killed (see _kill).
        self._reap(block=False)
        limits = ChildLimits(**meta["limits"])
        child = self._hand_over(request, set(meta["keys"]))
        handed = time.perf_counter()
        # The next model's child forks while this one runs, so that it is there, and warm, by
        # the time the next job comes, even when jobs come back to back.
        self.spare = self._fork()
        reply: dict[str, Any] = {"job": meta["job"]}
        frame = ready = None
        try:
            # The model's clock starts once the child is confined: preparing (trusted imports)
            # must not eat into the model's time.
            ready = wire.read_exact(child.result_r, 1, time.monotonic() + PREPARE_SECONDS)
            got_job = confined = time.perf_counter()
            if ready == READY:  # with when it got the job and was confined, before the model ran
                stamps = wire.read_exact(child.result_r, STAMPS.size, time.monotonic() + 5.0)
                if len(stamps) == STAMPS.size:
                    got_job, confined = STAMPS.unpack(stamps)
            deadline = time.monotonic() + (limits.wall_seconds if ready == READY else 5.0)
            frame = wire.read_frame(child.result_r, meta["max_result"], deadline) if ready else None
            reply["status"] = "done" if frame else "died" if ready else "sandbox_error"
            # Where a job's time goes, as the server sees it (milliseconds).
            reply["timing"] = {
                "hand_over": (handed - start) * 1e3,
                "to_child": (got_job - handed) * 1e3,
                "confine": (confined - got_job) * 1e3,
                "model": (time.perf_counter() - confined) * 1e3,
                # Running totals, for benchmarks: CPU of this server, and of its reaped children.
                "server_cpu_total": time.process_time() * 1e3,
                "children_cpu_total": self.children_cpu * 1e3,
            }
        except wire.FrameTimeout:
            reply["status"] = "timeout"
        except wire.WireError as e:
            reply.update(status="bad_output", detail=str(e))
        finally:
            self._kill(child)
        if frame is None:  # how it ended tells why
            reply.update(_exit_facts(self._wait(child.pid, 0)[1]))
            self.dead.remove(child)
            shutil.rmtree(child.scratch, ignore_errors=True)
        # The answer goes out at once; the killed child's teardown overlaps the parent's work.
        _send(wire.encode(reply, [np.frombuffer(frame, dtype=np.uint8)] if frame else []))

    def _hand_over(self, job: bytes, keys: set[str]) -> _Child:
        """Give the job to the spare if it can take it, else (or if it died) to a fresh child."""
        child, self.spare = self.spare, None
        for _ in range(2):
            if child is None or not keys <= child.keys:
                if child is not None:
                    self._kill(child)
                child = self._fork()
            try:
                _write_all(child.job_w, job)
                _close(child, "job_w")
                if self.idle_prep:  # its preparation, if unfinished, is now urgent
                    os.sched_setscheduler(child.pid, os.SCHED_OTHER, os.sched_param(0))
                return child
            except OSError:  # the child died before its job (our fault, not the model's)
                self._kill(child)
                child = None
        child = self._fork()
        _close(child, "job_w")  # no job: it reads end-of-stream and exits; run() reports that
        return child

    def _fork(self) -> _Child:
        scratch = tempfile.mkdtemp(prefix="job-", dir=self.scratch_root)
        self.forks += 1
        uid = child_uid(self.forks) if self.uid_drop else None
        if uid is not None:
            os.chown(scratch, uid, uid)
        job_r, job_w = os.pipe()
        result_r, result_w = os.pipe()
        wire.enlarge_pipe(job_w)
        wire.enlarge_pipe(result_w)
        pid = os.fork()
        if pid == 0:
            self._child(job_r, result_w, scratch, uid)
        os.close(job_r)
        os.close(result_w)
        return _Child(pid, job_w, result_r, scratch, frozenset(self.data), uid)

    def _kill(self, child: _Child) -> None:
        _kill_group(child.pid)
        # A SIGKILLed process runs no more code of its own, but its dir lingers until it is
        # reaped: take the dir back (owner first, so a last chmod of its own fails), so the
        # next model cannot find anything left for it there.
        if child.uid is not None:
            os.chown(child.scratch, 0, 0)
            os.chmod(child.scratch, 0o700)
        _close(child, "job_w")
        _close(child, "result_r")
        self.dead.append(child)

    def _wait(self, pid: int, options: int) -> tuple[int, int]:
        """waitpid, counting the CPU time of the children it reaps."""
        pid, status, usage = os.wait4(pid, options)
        self.children_cpu += usage.ru_utime + usage.ru_stime
        return pid, status

    def _reap(self, *, block: bool) -> None:
        for child in list(self.dead):
            pid, _ = self._wait(child.pid, 0 if block else os.WNOHANG)
            if pid:
                self.dead.remove(child)
                shutil.rmtree(child.scratch, ignore_errors=True)

    def _get_ready(self, job_r: int) -> None:
        """Idle work of a spare, off the critical path: the copy-on-write faults that the
        first inference of a fresh process takes on onnxruntime's and Python's pages, the
        spare takes here, before its job comes. It runs as SCHED_IDLE, so it never takes a
        core from anyone; the server promotes it when it hands it a job, and if the job is
        there before the warm-up began, the warm-up is skipped: on the critical path it would
        cost about what it saves.

        (Faulting in fresh heap pages ahead of time as well was measured: it saved less CPU
        in the model's run than it cost, so it is not done.)"""
        if self.idle_prep:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        try:
            warm_up = getattr(self.entry, "warm_up", None)
            if warm_up is not None and not select.select([job_r], [], [], 0)[0]:
                warm_up()
        finally:
            if self.idle_prep:
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))

    def _child(self, job_r: int, w: int, scratch: str, uid: int | None) -> None:
        try:
            detach((job_r, w))
            self._get_ready(job_r)
            lockdown_error = None
            if self.seccomp_program is not None:
                try:
                    install_filter(self.seccomp_program)
                except OSError as e:  # reported once the job comes: fail closed
                    lockdown_error = e
            job = wire.read_frame(job_r, MAX_REQUEST_BYTES)  # from the server: trusted
            got_job = time.perf_counter()
            if job is None:
                return  # the server let this spare go
            meta, (blob,) = wire.decode(job)
            args, limits = meta["args"], ChildLimits(**meta["limits"])
            datasets = [self.data[key] for key in meta["keys"]]
            prepare = getattr(self.entry, "prepare", None)
            if prepare is not None:
                prepare(args)
            try:
                if lockdown_error is not None:
                    raise lockdown_error
                confine(limits, scratch, uid)
            except BaseException as e:  # fail closed: never run a model unconfined
                _write_all(
                    w, NOT_READY + wire.encode({"status": "sandbox_error", "detail": _describe(e)})
                )
                return
            _write_all(w, READY + STAMPS.pack(got_job, time.perf_counter()))
            try:
                frame = wire.encode(
                    {"status": "ok"}, self.entry.run(args, blob.tobytes(), datasets)
                )
            except MemoryError:
                frame = wire.encode({"status": "memory"})
            except BaseException as e:  # whatever the model did, report it as its failure
                frame = wire.encode({"status": "error", "detail": _describe(e)})
            _write_all(w, frame)
        finally:
            os._exit(0)


def _close(child: _Child, which: str) -> None:
    """Close one of the child's pipe ends once: a stale number may already be someone else's."""
    fd = getattr(child, which)
    if fd >= 0:
        os.close(fd)
        setattr(child, which, -1)


def _describe(e: BaseException) -> str:
    if isinstance(e, WekaError):  # our own refusals already say what went wrong
        return str(e)[:300]
    return f"{type(e).__name__}: {e}"[:300]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _send(frame: bytes) -> None:
    _write_all(STDOUT, frame)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:  # group already gone (or never formed: kill the pid itself)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # already dead: nothing left to stop


def _exit_facts(status: int) -> dict[str, Any]:
    if os.WIFSIGNALED(status):
        return {"signal": signal.Signals(os.WTERMSIG(status)).name}
    return {"exit_code": os.WEXITSTATUS(status)}


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
        entry,
        scratch_root,
        program if facts["seccomp"] else None,
        facts["uid_drop"],
        facts["idle_prep"],
    )
    gc.collect()
    gc.freeze()  # keep the collector from touching, and so copying, the server's pages per child
    _send(wire.encode({"op": "hello", **facts}))
    server.serve()


if __name__ == "__main__":
    main(sys.argv[1:])
