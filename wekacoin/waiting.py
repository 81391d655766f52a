"""Waiting for a condition: the one polling loop of the client, the CLI, the testnet tools,
the test harnesses and the benchmarks.

    height = wait_until(lambda: node.height() >= 5 and node.height(), timeout=60,
                        what="height 5", retry_on=(NodeUnreachable,))

`wait_until` calls the predicate at once, then every `interval` seconds, until it returns
something truthy, and returns that. Exceptions of the `retry_on` types count as "not yet";
any other exception propagates at once (a predicate raises to say "this will never happen",
e.g. the process it waits on has exited). After `timeout` seconds it raises `WaitTimeout`,
naming `what`, the number of tries, the last value and the last exception seen.

`wait_until_async` is the same loop for trio code. Both take the clock and the sleep as
arguments, so the loop itself is tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator
from typing import TypeVar

from wekacoin.errors import WekaError

T = TypeVar("T")

_NOTHING = object()  # no value seen yet (every try raised)
_REPR_LIMIT = 200


class WaitTimeout(WekaError, TimeoutError):
    """A condition did not hold before its timeout. A WekaError, so the command line reports
    it in one line like any other failure of a workflow."""

    def __init__(self, message: str, what: str, tries: int, last_value: object,
                 last_error: BaseException | None) -> None:
        super().__init__(message)
        self.what = what
        self.tries = tries
        self.last_value = None if last_value is _NOTHING else last_value
        self.last_error = last_error


class _Tries:
    """What one wait has seen so far: the tries, the last value, the last retried error."""

    def __init__(self, what: str, timeout: float, retry_on: tuple[type[BaseException], ...],
                 detail: Callable[[], str] | None) -> None:
        self.what = what
        self.timeout = timeout
        self.retry_on = retry_on
        self.detail = detail
        self.count = 0
        self.last_value: object = _NOTHING
        self.last_error: BaseException | None = None

    def record(self, value: object) -> None:
        self.count += 1
        self.last_value = value

    def record_error(self, error: BaseException) -> None:
        self.count += 1
        self.last_error = error

    def timed_out(self) -> WaitTimeout:
        seen = []
        if self.last_value is not _NOTHING:
            seen.append(f"last value: {_short_repr(self.last_value)}")
        if self.last_error is not None:
            seen.append(f"last error: {type(self.last_error).__name__}: {self.last_error}")
        tries = f"{self.count} {'try' if self.count == 1 else 'tries'}"
        message = (f"timed out after {self.timeout:g} s waiting for {self.what} "
                   f"({'; '.join([tries, *seen])})")
        if self.detail is not None:
            message += "\n" + self.detail()
        return WaitTimeout(message, self.what, self.count, self.last_value, self.last_error)


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[:_REPR_LIMIT] + "…"


def wait_until(predicate: Callable[[], T | None], *, timeout: float, what: str,
               interval: float = 0.25, retry_on: tuple[type[BaseException], ...] = (),
               detail: Callable[[], str] | None = None,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], object] = time.sleep) -> T:
    """Poll `predicate` until it returns something truthy, and return that.

    It is called at once, then every `interval` seconds (the last time at the deadline), so
    at most about `timeout / interval + 1` times. Raises `WaitTimeout` after `timeout`
    seconds; `detail()`, if given, is appended to its message (e.g. the tail of a log)."""
    polls = _polls(predicate, _Tries(what, timeout, retry_on, detail), clock, timeout,
                   interval, retry_on)
    try:
        while True:
            sleep(next(polls))
    except StopIteration as done:
        return done.value


async def wait_until_async(predicate: Callable[[], T | None], *, timeout: float,
                           what: str, interval: float = 0.05,
                           retry_on: tuple[type[BaseException], ...] = (),
                           detail: Callable[[], str] | None = None,
                           clock: Callable[[], float] | None = None,
                           sleep: Callable[[float], Awaitable[object]] | None = None) -> T:
    """`wait_until` for trio code: the same loop, sleeping with `trio.sleep` (other tasks run
    meanwhile) on trio's clock unless `clock` and `sleep` are given."""
    if clock is None or sleep is None:
        import trio  # here, not at the top: the command line imports this module, not trio

        clock = clock or trio.current_time
        sleep = sleep or trio.sleep
    polls = _polls(predicate, _Tries(what, timeout, retry_on, detail), clock, timeout,
                   interval, retry_on)
    try:
        while True:
            await sleep(next(polls))
    except StopIteration as done:
        return done.value


def _polls(predicate: Callable[[], T | None], tries: _Tries, clock: Callable[[], float],
           timeout: float, interval: float,
           retry_on: tuple[type[BaseException], ...]) -> Generator[float, None, T]:
    """The polling loop of both waits: yields each pause for the caller to sleep (blocking
    or awaiting), returns the first truthy value, raises WaitTimeout at the deadline."""
    deadline = clock() + timeout
    while True:
        try:
            value = predicate()
        except retry_on as e:
            tries.record_error(e)
        else:
            if value:
                return value
            tries.record(value)
        left = deadline - clock()
        if left <= 0:
            raise tries.timed_out()
        yield min(interval, left)
