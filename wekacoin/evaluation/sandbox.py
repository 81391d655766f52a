"""The parent's side of the sandbox: start the fork server, send it jobs, read back results.

`ForkServerSandbox` owns one fork server process (see `forkserver.py`), started inside the
strongest isolation that works here (see `isolation.py`) and restarted if it ever dies. Every
job runs in a fresh confined child of that server; the parent only ever receives frames
(`wire.py`), which it decodes strictly. `run` blocks its caller and may be called from many
threads: up to `parallel` jobs (one per core by default) run at once, each in its own process
under its own limits, and a thread of the sandbox's reads the server's answers and hands each
to the caller waiting for it. How many run at once changes how fast, never what a model gets.

What isolation costs (bench/evaluate.py, 2-core VM): a fresh process per model spends some
15-20 ms of CPU beyond the inference itself: forking the server (page tables for its ~40 MB
of anonymous memory, ~2 ms, and the copy-on-write faults the server then takes, ~4 ms in all
for the server), the child's set-up, confinement and warm-up, and tearing it down (~4 ms).
The server forks, warms and confines spare children ahead of their jobs at idle priority, so
with a core to spare little of that is on a model's critical path (scoring takes about
1.15-1.3 times as long as bare in-process scoring there); with every core scoring it is CPU
the models do not get, and spares skip what they can once a job claims them. Starting
bubblewrap is paid once per fork server.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from wekacoin.errors import WekaError
from wekacoin.evaluation import wire
from wekacoin.evaluation.confine import ChildLimits
from wekacoin.evaluation.forkserver import PREPARE_SECONDS
from wekacoin.evaluation.isolation import Isolation, Namespaces, candidates, is_verified, launcher
from wekacoin.evaluation.server_link import ServerLink

log = logging.getLogger(__name__)

MODEL_ENTRY = "wekacoin.evaluation.worker"
START_TIMEOUT_SECONDS = 120.0
# Beyond a job's wall limit, before the server itself is presumed hung: it allows a child
# PREPARE_SECONDS of trusted set-up before the model's own clock starts.
SERVER_GRACE_SECONDS = PREPARE_SECONDS + 30.0


class SandboxError(WekaError):
    """The sandbox itself could not be started or kept running."""


@dataclass(frozen=True)
class Limits:
    """Per-model limits. `memory_bytes` is address space on top of the pre-loaded runtime."""

    wall_seconds: float = 30.0
    cpu_seconds: int | None = None  # default: the wall limit rounded up, plus one
    memory_bytes: int = 1024**3
    file_bytes: int = 16 * 1024**2
    open_files: int = 64

    def for_child(self) -> ChildLimits:
        cpu = self.cpu_seconds if self.cpu_seconds is not None else math.ceil(self.wall_seconds) + 1
        return ChildLimits(
            self.wall_seconds, cpu, self.memory_bytes, self.file_bytes, self.open_files
        )


class RunStatus(str, Enum):
    OK = "ok"
    FAILED = "failed"  # the model's fault, the same on every node: it ranks INVALID
    # No verdict in time: UNEVALUATED. Wall-clock and CPU time depend on this machine's speed
    # and load, so a slow node must not call a model INVALID that a faster one scores.
    TIMED_OUT = "timed_out"
    SANDBOX_ERROR = "sandbox_error"  # our fault, not the model's: UNEVALUATED, and loud


@dataclass(frozen=True)
class RunResult:
    status: RunStatus
    arrays: tuple[np.ndarray, ...] = ()
    detail: str = ""
    # Milliseconds per phase as the fork server measured them (see forkserver.run), when known.
    timing: dict[str, float] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class DataHandle:
    """A feature array the fork server holds, so that each job does not resend it."""

    key: str


def available_cores() -> int:
    """The cores this process may run on: how many models run at once by default."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def get_memory_available() -> int:
    """Bytes of memory this machine can still give (MemAvailable), or a huge number where
    it does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass  # not Linux, or no such line: no limit from here
    return 2**62


class ForkServerSandbox:
    def __init__(
        self,
        *,
        mode: str = "auto",
        entry: str = MODEL_ENTRY,
        preload: Sequence[str] = (),
        parallel: int | None = None,
    ) -> None:
        """`parallel`: how many jobs may run at once (default: one per core)."""
        self._mode, self._entry, self._preload = mode, entry, tuple(preload)
        self.parallel = max(1, parallel if parallel is not None else available_cores())
        self._slots = threading.BoundedSemaphore(self.parallel)
        self._lock = threading.Lock()  # the server's lifecycle, and every write to it
        self._server: ServerLink | None = None
        self._isolation: Isolation | None = None
        self._scratch: str | None = None
        self._data: dict[str, np.ndarray] = {}
        self._ids = itertools.count()

    def __enter__(self) -> ForkServerSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def isolation(self) -> Isolation:
        """The isolation in force (starts the server if needed)."""
        self.start()
        assert self._isolation is not None
        return self._isolation

    @property
    def server_pid(self) -> int | None:
        """The pid of the running server's process (bubblewrap's, under bubblewrap)."""
        server = self._server
        return server.proc.pid if server is not None else None

    def start(self) -> None:
        with self._lock:
            self._running()

    def close(self) -> None:
        with self._lock:
            self._stop()
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
                self._scratch = None

    def put_data(self, features: np.ndarray) -> DataHandle:
        features = np.ascontiguousarray(features)
        with self._lock:
            key = f"d{next(self._ids)}"
            self._data[key] = features
            self._tell(wire.encode_parts({"op": "put", "key": key}, [features]))
        return DataHandle(key)

    def release(self, handle: DataHandle) -> None:
        with self._lock:
            if self._data.pop(handle.key, None) is not None:
                self._tell(wire.encode_parts({"op": "drop", "key": handle.key}))

    def _tell(self, frame: list[memoryview]) -> None:
        """Send a request that has no answer; a dead server is restarted, with all data, later."""
        if self._server is None:
            return
        try:
            self._server.send(frame)
        except OSError as e:
            log.error("model sandbox: fork server gone (%s); it restarts at the next job", e)
            self._stop(kill=True)

    def run(
        self,
        blob: bytes,
        args: dict[str, Any],
        data: Sequence[DataHandle],
        limits: Limits,
        max_result_bytes: int,
    ) -> RunResult:
        """Run the entry point on `blob` and the given data in a fresh confined child.
        Blocks until the answer is in; callable from several threads at once."""
        child = limits.for_child()
        with self._slots:
            for attempt in (1, 2):  # a server that died on us gets one fresh start
                job = next(self._ids)
                request = wire.encode_parts(
                    {
                        "op": "run",
                        "job": job,
                        "keys": [h.key for h in data],
                        "args": args,
                        "limits": child.__dict__,
                        "max_result": max_result_bytes,
                    },
                    [np.frombuffer(blob, dtype=np.uint8)],
                )
                server = None
                try:
                    with self._lock:
                        server = self._running()
                        answer = server.expect(job, max_result_bytes + (1 << 20))
                        server.send(request)
                    del request
                    deadline = time.monotonic() + child.wall_seconds + SERVER_GRACE_SECONDS
                    meta, arrays = answer.wait(deadline)
                    break
                except (OSError, wire.WireError) as e:
                    log.error("model sandbox: fork server failed (%s); restarting it", e)
                    with self._lock:
                        if server is not None and server is self._server:
                            self._stop(kill=True)
                    if attempt == 2 or isinstance(e, wire.FrameTimeout):
                        return RunResult(RunStatus.SANDBOX_ERROR, detail=f"fork server failed: {e}")
        return _interpret(meta, arrays)

    # -- server lifecycle (callers hold the lock) --

    def _running(self) -> ServerLink:
        """The running server, (re)started if need be, with every feature array put so far."""
        if self._server is not None and (
            self._server.proc.poll() is not None or self._server.failure is not None
        ):
            self._stop(kill=True)
        if self._server is None:
            self._start()
        assert self._server is not None
        return self._server

    def _start(self) -> None:
        failures = []
        for ns in candidates(self._mode):
            try:
                server = self._launch(ns)
                server.send(wire.encode_parts({"op": "pool", "spares": self.parallel + 1}))
                for key, features in self._data.items():
                    server.send(wire.encode_parts({"op": "put", "key": key}, [features]))
                server.start_reading()
                log.info(
                    "model sandbox isolation: %s", self._isolation and self._isolation.describe()
                )
                return
            except (OSError, wire.WireError, SandboxError) as e:
                failures.append(f"{ns.value}: {e}")
                self._stop(kill=True)
        raise SandboxError("could not start the model sandbox: " + "; ".join(failures))

    def _launch(self, ns: Namespaces) -> ServerLink:
        # An empty directory of our own; under bwrap a private tmpfs is mounted over it, which
        # hides nothing (a tmpfs over /tmp would hide a virtualenv or checkout living there).
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="wekacoin-sandbox-")
        scratch = self._scratch
        command = [
            *launcher(ns, scratch),
            sys.executable,
            "-m",
            "wekacoin.evaluation.forkserver",
            self._entry,
            scratch,
            *self._preload,
        ]
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_server_env(),
            start_new_session=True,
        )
        self._server = server = ServerLink(proc)
        hello = wire.read_frame(server.out_fd, 1 << 16, time.monotonic() + START_TIMEOUT_SECONDS)
        if hello is None:
            raise SandboxError(f"fork server exited at start (code {proc.wait()})")
        facts, _ = wire.decode(hello)
        if facts.get("op") != "hello" or not is_verified(ns, facts):
            raise SandboxError(f"fork server does not confirm {ns.value}: {facts}")
        self._isolation = Isolation(ns, bool(facts["seccomp"]), bool(facts["uid_drop"]))
        return server

    def _stop(self, *, kill: bool = False) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop(kill=kill)


def _server_env() -> dict[str, str]:
    env = dict(os.environ)
    # One thread everywhere: determinism (NOTES.md), and no thread creation under seccomp.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # The same modules as ours, this worktree first, whatever the server's working directory.
    env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p or os.curdir) for p in sys.path)
    return env


def _one_line(text: str) -> str:
    """Untrusted text becomes a short printable one-line reason."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:300]


def _interpret(meta: dict[str, Any], arrays: list[np.ndarray]) -> RunResult:
    status = meta.get("status")
    if status == "timeout":
        return RunResult(RunStatus.TIMED_OUT, detail="wall-clock limit reached")
    if status == "died":
        if meta.get("signal") == "SIGXCPU":
            return RunResult(RunStatus.TIMED_OUT, detail="CPU-time limit reached")
        if meta.get("signal") == "SIGKILL":
            # A model is data (an ONNX graph, skops objects) and runs no code that could send
            # SIGKILL: the kernel's out-of-memory killer or an operator did, for reasons of
            # this machine (its RAM), not of the model, whose own limit is RLIMIT_AS.
            log.error("model sandbox: a model process was killed (out of memory here?)")
            return RunResult(RunStatus.SANDBOX_ERROR, detail="model process killed by the system")
        how = meta.get("signal") or f"exit code {meta.get('exit_code')}"
        return RunResult(RunStatus.FAILED, detail=f"model process died without an answer ({how})")
    if status == "sandbox_error":
        log.error("model sandbox: a model process failed before confinement: %s", meta)
        return RunResult(RunStatus.SANDBOX_ERROR, detail="model process failed to start")
    if status == "bad_output":
        return RunResult(RunStatus.FAILED, detail=f"unusable output: {meta.get('detail')}")
    if status != "done" or len(arrays) != 1:
        return RunResult(RunStatus.SANDBOX_ERROR, detail=f"unexpected reply {str(meta)[:100]}")
    try:
        inner, results = wire.decode(arrays[0].data)
    except wire.WireError as e:
        return RunResult(RunStatus.FAILED, detail=f"unusable output: {e}")
    kind = inner.get("status")
    detail = _one_line(str(inner.get("detail", "")))
    if kind == "ok":
        timing = meta.get("timing")
        if not isinstance(timing, dict) or not all(isinstance(v, float) for v in timing.values()):
            timing = {}
        return RunResult(RunStatus.OK, tuple(results), timing=timing)
    if kind == "memory":
        return RunResult(RunStatus.FAILED, detail="memory limit reached")
    if kind == "sandbox_error":
        log.error("model sandbox: a child could not be confined: %s", detail)
        return RunResult(RunStatus.SANDBOX_ERROR, detail=f"confinement failed: {detail}")
    return RunResult(RunStatus.FAILED, detail=detail or "model process reported an error")
