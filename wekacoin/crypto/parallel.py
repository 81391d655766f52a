"""Checks on every core: `parallel_map` runs a pure check over many items in a shared pool of
threads and answers exactly what the serial loop would, for block transactions and votes.

Threads suffice because the costly part of each check is C code that releases the GIL:
libsodium's Ed25519 verification behind PyNaCl (compiled cffi, which drops the GIL around every
call) and our ECVRF verifier (`_ecvrf`, Py_BEGIN_ALLOW_THREADS around the arithmetic).

Consensus needs the parallel answer to be the serial one, not merely a valid one: the results
come back in item order, and if checks raise, the exception raised is that of the lowest
index, which is the one `[check(x) for x in items]` raises. A chunk stops at its first failure
and the chunks are collected in index order, so the first failing chunk holds the lowest
failing index; the chunks after it are abandoned.

Ed25519 signatures in number (a block's transactions) go through `SignatureChecks` instead:
each chunk is one call into C (libsodium's own `crypto_sign_open`, run by the extension without
the GIL for the whole chunk), so the checks proceed on the other cores even while the calling
thread runs Python, which per-signature calls could not (a thread waiting for the GIL after
each signature would wait for the interpreter's switch interval, 5 ms).

The calling thread works too: it runs every chunk no worker has started yet rather than wait
for one, so the pool has one worker fewer than the machine has cores, and a check that itself
calls `parallel_map` (or a pool with no workers, on one core) still finishes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from nacl import bindings as _sodium_init  # noqa: F401  (sodium_init runs at import)
from nacl._sodium import ffi as _ffi
from nacl._sodium import lib as _lib

from wekacoin.crypto import _ecvrf

T = TypeVar("T")
R = TypeVar("R")

CHUNKS_PER_THREAD = 4
"""Small enough chunks that threads finishing at different times still end together, few
enough that the cost of a future (tens of microseconds) stays out of sight."""

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_workers: int | None = None  # None: one per core but the caller's


def default_workers() -> int:
    """One worker per core this process may run on, minus the calling thread's."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(cores - 1, 0)


def get_workers() -> int:
    return default_workers() if _workers is None else _workers


def set_workers(workers: int | None) -> None:
    """Use `workers` threads besides the caller (0: every check runs in the calling thread;
    None: one per core but one). For tests and benchmarks; the pool is rebuilt on next use."""
    global _pool, _workers
    if workers is not None and workers < 0:
        raise ValueError("a pool cannot have fewer than 0 workers")
    with _lock:
        old, _pool, _workers = _pool, None, workers
    if old is not None:
        old.shutdown(wait=False, cancel_futures=True)


def _get_pool() -> ThreadPoolExecutor | None:
    """The shared pool, started on first use; None if it has no workers."""
    global _pool
    with _lock:
        if _pool is None and get_workers() > 0:
            _pool = ThreadPoolExecutor(get_workers(), thread_name_prefix="wekacoin-verify")
        return _pool


def _forget_pool() -> None:
    """In a forked child: the parent's threads are gone, so its pool cannot run anything."""
    global _pool, _lock
    _pool, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def parallel_map(check: Callable[[T], R], items: Sequence[T], *, min_chunk: int = 8) -> list[R]:
    """`[check(x) for x in items]`, computed on every core, with the same result or exception.

    `check` must be pure (it runs in other threads, and may run on items after the first that
    fails). Fewer than two chunks of `min_chunk` items run in the calling thread: a check that
    costs less than a few microseconds per item is not worth sending to another thread.
    """
    n = len(items)
    pool = _get_pool() if n >= 2 * min_chunk else None
    if pool is None:
        return [check(x) for x in items]
    threads = get_workers() + 1
    size = max(min_chunk, -(-n // (threads * CHUNKS_PER_THREAD)))
    bounds = [(lo, min(lo + size, n)) for lo in range(0, n, size)]

    def run(k: int) -> list[R]:
        lo, hi = bounds[k]
        return [check(items[i]) for i in range(lo, hi)]

    futures: list[Future[list[R]]] = [pool.submit(run, k) for k in range(len(bounds))]
    mine: dict[int, list[R]] = {}
    error: Exception | None
    stop, error = len(bounds), None  # the chunk that failed here first, and its exception
    try:
        # Run here, in order, every chunk no worker has started, until one fails...
        for k, future in enumerate(futures):
            if future.cancel():
                try:
                    mine[k] = run(k)
                except Exception as e:
                    stop, error = k, e
                    break
        # ...then collect in order: the first chunk that failed holds the lowest index.
        results: list[R] = []
        for k in range(stop):
            results.extend(mine[k] if k in mine else futures[k].result())
        if error is not None:
            raise error
        return results
    finally:  # after a failure the later chunks are not needed; running ones just finish
        for future in futures:
            future.cancel()


_SIGN_OPEN = int(_ffi.cast("uintptr_t", _ffi.addressof(_lib, "crypto_sign_open")))
"""The address of the libsodium function PyNaCl calls for one signature."""

MIN_SHARED_SIGNATURES = 16
"""Fewer signatures than this are checked in the calling thread: not worth a pool task."""


def verify_signatures(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """`[verify_signature(pk, message, signature) for ...]` in one call without the GIL, on
    this thread."""
    batch = _ecvrf.SignatureBatch(_SIGN_OPEN, items)
    batch.run()
    return [flag == 1 for flag in batch.flags()]


class SignatureChecks:
    """Ed25519 checks started on the pool's threads, to run while the caller does other work;
    `first_failure()` then joins them (this thread takes whatever is left) and answers which
    failed first.

        checks = SignatureChecks([(public_key, message, signature), ...])
        ...  # the rest of the work, in this thread
        bad = checks.first_failure()  # the lowest failing index, or None

    Each thread makes one call into C that takes the next unchecked signature until none is
    left, so the threads share the work whatever the machine's load, and none of them waits
    for the GIL between signatures.
    """

    def __init__(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> None:
        self._batch = _ecvrf.SignatureBatch(_SIGN_OPEN, items)
        pool = _get_pool() if len(items) >= MIN_SHARED_SIGNATURES else None
        self._futures: list[Future[int]] = []
        if pool is not None:
            self._futures = [pool.submit(self._batch.run) for _ in range(get_workers())]

    def first_failure(self) -> int | None:
        """The lowest index whose signature is invalid, or None if all are valid."""
        self._batch.run()
        for future in self._futures:
            if not future.cancel():
                future.result()
        bad = self._batch.flags().find(0)
        return None if bad < 0 else bad
