"""The parent's side of the sandbox: start the fork server, send it jobs, read back results.

`ForkServerSandbox` owns one fork server process (see `forkserver.py`), started inside the
strongest isolation that works here (see `isolation.py`) and restarted if it ever dies. Every
job runs in a fresh child of that server; the parent only ever receives frames (`wire.py`),
which it decodes strictly. Calls are blocking and serialised by a lock: one model at a time,
so runs do not compete for the cores and time limits mean the same thing for every model.

What isolation costs (bench/evaluate.py, 2-core machine): a fresh process per model spends
about 12-16 ms of CPU beyond the inference itself: ~2-4 ms forking the server (page tables
for its ~30 MB of anonymous memory), ~2 ms of set-up and confinement in the child, and ~6-7 ms
tearing the killed child down. Fork, warm-up and teardown run beside the critical path when a
core is free; on a machine whose cores are busy with other work, they show up in wall time.
Starting bubblewrap is paid once per fork server, not per model.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import shutil
import signal
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


class ForkServerSandbox:
    def __init__(
        self, *, mode: str = "auto", entry: str = MODEL_ENTRY, preload: Sequence[str] = ()
    ) -> None:
        self._mode, self._entry, self._preload = mode, entry, tuple(preload)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
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

    def start(self) -> None:
        with self._lock:
            if self._proc is None:
                self._start()

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
            self._tell(wire.encode({"op": "put", "key": key}, [features]))
        return DataHandle(key)

    def release(self, handle: DataHandle) -> None:
        with self._lock:
            if self._data.pop(handle.key, None) is not None:
                self._tell(wire.encode({"op": "drop", "key": handle.key}))

    def _tell(self, frame: bytes) -> None:
        """Send a request that has no answer; a dead server is restarted, with all data, later."""
        if self._proc is None:
            return
        try:
            self._send(frame)
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
        """Run the entry point on `blob` and the given data in a fresh confined child."""
        child = limits.for_child()
        job = next(self._ids)
        request = wire.encode(
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
        with self._lock:
            for attempt in (1, 2):  # a server that died on us gets one fresh start
                try:
                    if self._proc is None or self._proc.poll() is not None:
                        self._stop(kill=True)
                        self._start()
                    self._send(request)
                    deadline = time.monotonic() + child.wall_seconds + SERVER_GRACE_SECONDS
                    reply = wire.read_frame(
                        self._stdout_fd(), max_result_bytes + (1 << 20), deadline
                    )
                    if reply is None:
                        raise wire.WireError("fork server closed its output")
                    meta, arrays = wire.decode(reply)
                    break
                except (OSError, wire.WireError) as e:
                    log.error("model sandbox: fork server failed (%s); restarting it", e)
                    self._stop(kill=True)
                    if attempt == 2 or isinstance(e, wire.FrameTimeout):
                        return RunResult(RunStatus.SANDBOX_ERROR, detail=f"fork server failed: {e}")
        return _interpret(meta, arrays)

    # -- server lifecycle (callers hold the lock) --

    def _start(self) -> None:
        failures = []
        for ns in candidates(self._mode):
            try:
                self._launch(ns)
                for key, features in self._data.items():
                    self._send(wire.encode({"op": "put", "key": key}, [features]))
                log.info(
                    "model sandbox isolation: %s", self._isolation and self._isolation.describe()
                )
                return
            except (OSError, wire.WireError, SandboxError) as e:
                failures.append(f"{ns.value}: {e}")
                self._stop(kill=True)
        raise SandboxError("could not start the model sandbox: " + "; ".join(failures))

    def _launch(self, ns: Namespaces) -> None:
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
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_server_env(),
            start_new_session=True,
        )
        assert self._proc.stdin is not None
        wire.enlarge_pipe(self._proc.stdin.fileno())
        wire.enlarge_pipe(self._stdout_fd())
        hello = wire.read_frame(
            self._stdout_fd(), 1 << 16, time.monotonic() + START_TIMEOUT_SECONDS
        )
        if hello is None:
            raise SandboxError(f"fork server exited at start (code {self._proc.wait()})")
        facts, _ = wire.decode(hello)
        if facts.get("op") != "hello" or not is_verified(ns, facts):
            raise SandboxError(f"fork server does not confirm {ns.value}: {facts}")
        self._isolation = Isolation(ns, bool(facts["seccomp"]), bool(facts["uid_drop"]))

    def _stop(self, *, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        try:
            if kill:
                raise subprocess.TimeoutExpired(proc.args, 0)
            proc.stdin.close()  # a clean end of input lets the server exit by itself
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it exited between the timeout and the kill
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def _send(self, frame: bytes) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(frame)
        self._proc.stdin.flush()

    def _stdout_fd(self) -> int:
        assert self._proc is not None and self._proc.stdout is not None
        return self._proc.stdout.fileno()


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
        inner, results = wire.decode(arrays[0].tobytes())
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
