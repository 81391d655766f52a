"""One model process, from its fork to its reaping: the fork server's unit of isolation.

The fork server forks model processes before there is a model for them ("spares"), and each
gets ready on its own time: `detach`, a warm-up at idle priority, the seccomp filter, and
`confine` under the limits it was forked for. Only then does it say READY, and only then does
the server send it a job: a model's bytes never enter a process that is not confined. The
job's own limits come last (`confine.tighten`: they can only be lowered), then the model runs,
the one answer goes back, and the server kills the process. A process scores one model and
dies: no model ever shares a process, or a uid, with another. (A job whose format needs
trusted imports the server did not make, `entry.prepare_key`, gets a process forked for it,
which makes them, `entry.prepare`, before it confines itself.)

On the job pipe the server sends CLAIM, then the job frame. It sends CLAIM as soon as it picks
a process for a job, ready or not: a process that finds itself claimed before its warm-up
skips it (it would cost as much on the critical path as it saves). On the answer pipe the
process sends READY (or NOT_READY and a frame saying why), then its answer frame, and waits to
be killed.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import select
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from enum import Enum
from types import ModuleType
from typing import Any

import numpy as np

from wekacoin.errors import WekaError
from wekacoin.evaluation import wire
from wekacoin.evaluation.confine import (
    ChildLimits,
    child_uid,
    confine,
    detach,
    fits,
    mapped_bytes,
    tighten,
)
from wekacoin.evaluation.seccomp_filter import install_filter

MAX_JOB_BYTES = 2 * 1024**3
READY, NOT_READY, CLAIM = b"R", b"E", b"C"
SPARE_HEAP_BYTES = 8 * 1024**2  # heap a spare faults in ahead of its model (see _warm_heap)
_STEP_BYTES = 1024**2
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc)


@dataclass(frozen=True)
class Profile:
    """What a process is confined for before its job is known: the limits it may tighten
    from, and what it prepared for (`entry.prepare_key`; None for spares)."""

    limits: ChildLimits
    prepared: str | None = None

    def serves(self, limits: ChildLimits, prepared: str | None) -> bool:
        return prepared == self.prepared and fits(limits, self.limits)

    def widened(self, limits: ChildLimits) -> Profile:
        """For spares that can serve `limits` as well as every job they served so far."""
        mine = self.limits
        return Profile(
            ChildLimits(
                max(mine.wall_seconds, limits.wall_seconds),
                max(mine.cpu_seconds, limits.cpu_seconds),
                max(mine.memory_bytes, limits.memory_bytes),
                max(mine.file_bytes, limits.file_bytes),
                max(mine.open_files, limits.open_files),
            ),
            self.prepared,
        )


class State(Enum):
    PREPARING = "preparing"  # forked, not yet confined
    READY = "ready"  # confined, waiting for its job
    FAILED = "failed"  # could not get ready: `failure` says how
    BUSY = "busy"  # has its job, its model runs


@dataclass(frozen=True)
class Setup:
    """What every model process of one fork server shares."""

    entry: ModuleType
    scratch_root: str
    seccomp_program: bytes | None
    uid_drop: bool
    idle_prep: bool  # may a process prepare at idle priority (and be promoted back)?


class ModelProcess:
    """The server's handle on one forked process, and (in `_live`) the process itself."""

    def __init__(
        self,
        setup: Setup,
        serial: int,
        profile: Profile,
        data: dict[str, np.ndarray],
        *,
        claimed: bool = False,
        prepare_args: dict[str, Any] | None = None,
    ) -> None:
        """Fork it; `claimed`: for a job already waiting (no warm-up, no idle priority),
        whose args are `prepare_args` if it must `entry.prepare` for them."""
        self.profile = profile
        self.keys = frozenset(data)  # the feature arrays it inherits
        self.state = State.PREPARING
        self.failure: dict[str, Any] = {}  # the answer a job gets from a FAILED process
        self.claimed = self._claim_sent = self.killed = self._locked = False
        self.deadline = 0.0  # monotonic: to get ready once claimed, then to answer
        self.reader: wire.FrameReader | None = None
        self.scratch = _new_dir(setup.scratch_root, f"job-{os.getpid()}-{serial}")
        self.uid = child_uid(serial) if setup.uid_drop else None
        if self.uid is not None:
            os.chown(self.scratch, self.uid, self.uid)
        job_r, self.job_w = os.pipe()
        self.answer_r, answer_w = os.pipe()
        wire.enlarge_pipe(self.job_w)
        wire.enlarge_pipe(answer_w)
        self.pid = os.fork()
        if self.pid == 0:
            _live(setup, profile, claimed, prepare_args, data, self.scratch, self.uid, job_r,
                  answer_w)
        os.close(job_r)
        os.close(answer_w)
        os.set_blocking(self.answer_r, False)
        if claimed:
            self.claim(idle_prep=False)
        elif setup.idle_prep:  # set here, not in the child: the server may promote it at once
            try:
                os.sched_setscheduler(self.pid, os.SCHED_IDLE, os.sched_param(0))
            except OSError:
                pass  # already gone: its pipe tells

    def serves(self, limits: ChildLimits, prepared: str | None, keys: frozenset[str]) -> bool:
        return keys <= self.keys and self.profile.serves(limits, prepared)

    def claim(self, idle_prep: bool) -> None:
        """Tell it a job is coming, and (if it prepares at idle priority) hurry it up."""
        self.claimed = True
        try:
            if self.state is State.PREPARING:
                os.write(self.job_w, CLAIM)
                self._claim_sent = True
            if idle_prep and self.state in (State.PREPARING, State.READY):
                os.sched_setscheduler(self.pid, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            pass  # it died: its answer pipe tells

    def on_readable(self) -> wire.Frame | None:
        """Read what it sent; moves PREPARING on to READY or FAILED, and returns its answer
        frame once whole. Raises EOFError or WireError for a BUSY process (see `wire`)."""
        if self.state is State.PREPARING and self.reader is None:
            try:
                first = os.read(self.answer_r, 1)
            except BlockingIOError:
                return None
            if first == READY:
                self.state = State.READY
            elif first == NOT_READY:
                self.reader = wire.FrameReader(self.answer_r, 1 << 16)
            else:
                self._fail({"status": "sandbox_error"})  # died while getting ready
            return None
        if self.state is State.PREPARING:  # why it could not get ready (it is trusted so far)
            assert self.reader is not None
            try:
                frame: wire.Frame | None = self.reader.read()
            except (EOFError, wire.WireError):
                frame = wire.encode({"status": "sandbox_error", "detail": "no reason given"})
            if frame is not None:
                self._fail({"status": "done", "frame": frame})
            return None
        if self.state is State.READY:  # nothing is due from a waiting process: it died
            self._fail({"status": "sandbox_error"})
            return None
        assert self.state is State.BUSY and self.reader is not None
        return self.reader.read()

    def _fail(self, answer: dict[str, Any]) -> None:
        self.state, self.failure, self.reader = State.FAILED, answer, None

    def hand_over(self, job: wire.Frame, wall_seconds: float, max_answer_bytes: int) -> None:
        """Send the job to a READY process and start its model's clock. Raises OSError if it
        died before taking it."""
        wire.write_parts(self.job_w, [job] if self._claim_sent else [CLAIM, job])
        os.close(self.job_w)
        self.job_w = -1
        self.state = State.BUSY
        self.deadline = time.monotonic() + wall_seconds
        self.reader = wire.FrameReader(self.answer_r, max_answer_bytes)

    def lock_scratch(self) -> None:
        """Take its scratch dir back (owner first, so a last chmod of its own fails): no model
        run after it finds anything left there, even before it is reaped."""
        if self.uid is not None and not self._locked:
            os.chown(self.scratch, 0, 0)
            os.chmod(self.scratch, 0o700)
            self._locked = True

    def kill(self) -> None:
        """SIGKILL its group and lock its scratch dir. Once is enough."""
        if self.killed:
            return
        self.killed = True
        _kill_group(self.pid)
        # A SIGKILLed process runs no more code of its own, but its dir lingers until it is
        # reaped.
        self.lock_scratch()
        for fd in (self.job_w, self.answer_r):
            if fd >= 0:
                os.close(fd)
        self.job_w = self.answer_r = -1

    def remove_scratch(self) -> None:
        try:
            os.rmdir(self.scratch)  # most models leave nothing
        except OSError:
            shutil.rmtree(self.scratch, ignore_errors=True)


def _new_dir(root: str, name: str) -> str:
    """An empty dir of ours (0700) under `root`: `name`, or a random one if that is taken."""
    path = os.path.join(root, name)
    try:
        os.mkdir(path, 0o700)
        return path
    except FileExistsError:  # left by an earlier server of the same pid
        return tempfile.mkdtemp(prefix=f"{name}-", dir=root)


def exit_facts(status: int) -> dict[str, Any]:
    if os.WIFSIGNALED(status):
        return {"signal": signal.Signals(os.WTERMSIG(status)).name}
    return {"exit_code": os.WEXITSTATUS(status)}


# -- in the child --


def _live(
    setup: Setup,
    profile: Profile,
    claimed: bool,
    prepare_args: dict[str, Any] | None,
    data: dict[str, np.ndarray],
    scratch: str,
    uid: int | None,
    job_r: int,
    w: int,
) -> None:
    """The whole life of a model process; never returns."""
    try:
        detach((job_r, w))
        spare_heap = 0
        if not claimed and not select.select([job_r], [], [], 0)[0]:  # time to warm up
            warm_up = getattr(setup.entry, "warm_up", None)
            if warm_up is not None:
                warm_up()
            spare_heap = _warm_heap(job_r)
        try:
            if setup.seccomp_program is not None:
                install_filter(setup.seccomp_program)
            if prepare_args is not None:
                setup.entry.prepare(prepare_args)
            confine(profile.limits, scratch, uid)
        except BaseException as e:  # fail closed: never run a model unconfined
            failure = {"status": "sandbox_error", "detail": _describe(e)}
            _write_all(w, NOT_READY + wire.encode(failure))
            return
        _write_all(w, READY)
        if os.read(job_r, 1) != CLAIM:
            return  # the server let this spare go
        # From the server: trusted. Read into a mapping of its own, as big as the frame, so
        # that it counts as runtime for `tighten`, as it did before the heap was warmed.
        job = wire.read_frame(job_r, MAX_JOB_BYTES, buffer=_anonymous_map)
        if job is None:
            return
        meta, (blob,) = wire.decode(job)
        try:
            tighten(ChildLimits(**meta["limits"]), spare_heap)
        except BaseException as e:
            _write_all(w, wire.encode({"status": "sandbox_error", "detail": _describe(e)}))
            return
        datasets = [data[key] for key in meta["keys"]]
        try:
            arrays = setup.entry.run(meta["args"], blob.tobytes(), datasets)
            answer = wire.encode_parts({"status": "ok"}, arrays)
        except MemoryError:
            answer = wire.encode_parts({"status": "memory"})
        except BaseException as e:  # whatever the model did, report it as its failure
            answer = wire.encode_parts({"status": "error", "detail": _describe(e)})
        wire.write_parts(w, answer)
        while True:  # the server kills it once the answer is on its way: its teardown then
            signal.pause()  # does not hold up the answer
    finally:
        os._exit(0)


def _warm_heap(job_r: int) -> int:
    """Fault in SPARE_HEAP_BYTES of heap and leave them free for the model to reuse; how many
    bytes that added to the address space (which `tighten` does not count as runtime).

    A fresh process takes a page fault for each page its model's run first touches, several
    hundred of them for the benchmark's models, where the long-lived bare process reuses pages
    it has; faulted in ahead here (idle work), they are off the model's clock. For the model
    to find them, blocks up to that size come from the heap and a free top of up to twice it
    stays (what glibc's own adaptive thresholds settle on after such a block is freed). Stops
    as soon as a job claims the process: on the critical path this costs what it saves."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    before = mapped_bytes()
    if not (
        libc.mallopt(M_MMAP_THRESHOLD, SPARE_HEAP_BYTES + _STEP_BYTES)
        and libc.mallopt(M_TRIM_THRESHOLD, 2 * SPARE_HEAP_BYTES + _STEP_BYTES)
    ):
        return 0
    block = libc.malloc(SPARE_HEAP_BYTES)
    if not block:
        return 0
    for offset in range(0, SPARE_HEAP_BYTES, _STEP_BYTES):
        if select.select([job_r], [], [], 0)[0]:
            break  # claimed: the rest faults in as the model needs it
        libc.memset(block + offset, 0, _STEP_BYTES)
    libc.free(block)
    return max(0, mapped_bytes() - before)


def _anonymous_map(size: int) -> mmap.mmap:
    return mmap.mmap(-1, size)


def _describe(e: BaseException) -> str:
    if isinstance(e, WekaError):  # our own refusals already say what went wrong
        return str(e)[:300]
    return f"{type(e).__name__}: {e}"[:300]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:  # group already gone (or never formed: kill the pid itself)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # already dead: nothing left to stop
