"""The parent's link to one running fork server: its process, the requests written to it, and
a thread that reads its answers and hands each to the caller waiting for it.

Answers come tagged with their job's id, in whatever order the jobs finish. If the server
dies or sends something unreadable, every caller still waiting gets a WireError, and the link
says so (`failure`): `ForkServerSandbox` then starts another server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Any

import numpy as np

from wekacoin.evaluation import wire

Reply = tuple[dict[str, Any], list[np.ndarray]]


class Answer:
    """Where the reading thread leaves one job's answer for the caller waiting on it."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._done = threading.Event()
        self._value: Reply | None = None
        self._error: Exception | None = None

    def set(self, value: Reply | None, error: Exception | None) -> None:
        self._value, self._error = value, error
        self._done.set()

    def wait(self, deadline: float) -> Reply:
        if not self._done.wait(max(0.0, deadline - time.monotonic())):
            raise wire.FrameTimeout("no answer from the fork server in time")
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


class ServerLink:
    """One running fork server: its process, and a thread that reads its answers (tagged
    with their job ids, in whatever order jobs finish) and hands each to its caller."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self.out_fd = proc.stdout.fileno()
        wire.enlarge_pipe(proc.stdin.fileno())
        wire.enlarge_pipe(self.out_fd)
        self.failure: Exception | None = None
        self._waiting: dict[int, Answer] = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name="fork-server-answers", daemon=True)

    def start_reading(self) -> None:
        self._reader.start()

    def send(self, frame: list[memoryview]) -> None:
        assert self.proc.stdin is not None
        wire.write_parts(self.proc.stdin.fileno(), frame)

    def expect(self, job: int, max_bytes: int) -> Answer:
        answer = Answer(max_bytes)
        with self._lock:
            if self.failure is not None:
                raise wire.WireError(f"fork server failed: {self.failure}")
            self._waiting[job] = answer
        return answer

    def _read(self) -> None:
        try:
            while True:
                prefix = wire.read_exact(self.out_fd, wire.PREFIX.size, None)
                if not prefix:
                    raise wire.WireError("fork server closed its output")
                if len(prefix) < wire.PREFIX.size:
                    raise wire.WireError("stream ended inside a frame")
                with self._lock:  # checked once the frame is there: its job is waiting by then
                    limit = max((a.max_bytes for a in self._waiting.values()), default=1 << 20)
                meta, arrays = wire.decode(wire.read_rest(self.out_fd, prefix, limit, None))
                job = meta.get("job")
                with self._lock:
                    answer = self._waiting.pop(job, None) if isinstance(job, int) else None
                if answer is None:
                    raise wire.WireError(f"answer to no job waiting: {str(meta)[:100]}")
                answer.set((meta, arrays), None)
        except (OSError, ValueError, wire.WireError) as e:
            with self._lock:
                self.failure = e
                waiting, self._waiting = list(self._waiting.values()), {}
            for answer in waiting:
                answer.set(None, wire.WireError(f"fork server failed: {e}"))

    def stop(self, *, kill: bool) -> None:
        proc = self.proc
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
        if self._reader.is_alive() and self._reader is not threading.current_thread():
            self._reader.join(timeout=5)
        for pipe in (proc.stdin, proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass  # a half-written request: nothing to flush to a dead server
