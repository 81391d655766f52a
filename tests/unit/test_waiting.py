"""`wekacoin.waiting`: the one polling loop. Most tests run it on a fake clock that only the
loop's own sleeps move, so they are exact and take no time; one runs it on the real clock."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import trio

from tests.helpers.clock import FakeClock
from wekacoin.errors import WekaError
from wekacoin.waiting import WaitTimeout, wait_until, wait_until_async


def counting(values: list[object]) -> tuple[Callable[[], object], list[int]]:
    """A predicate returning `values` one by one (the last one for ever), and its call count."""
    calls = [0]

    def predicate() -> object:
        calls[0] += 1
        return values[min(calls[0], len(values)) - 1]

    return predicate, calls


def test_returns_the_first_truthy_value_without_sleeping_after_it() -> None:
    clock = FakeClock(1000.0)
    predicate, calls = counting([None, 0, [], {"height": 7}])
    value = wait_until(predicate, timeout=10, interval=0.5, what="x", clock=clock,
                       sleep=clock.sleep)
    assert value == {"height": 7}
    assert calls[0] == 4
    assert clock.sleeps == [0.5, 0.5, 0.5]


def test_a_true_condition_returns_at_once() -> None:
    clock = FakeClock(1000.0)
    assert wait_until(lambda: 5, timeout=0, what="x", clock=clock, sleep=clock.sleep) == 5
    assert clock.sleeps == []


def test_timeout_names_what_the_tries_and_the_last_value() -> None:
    clock = FakeClock(1000.0)
    predicate, calls = counting([None, "", 0])
    with pytest.raises(WaitTimeout) as caught:
        wait_until(predicate, timeout=3, interval=1, what="height 9 on node0", clock=clock,
                   sleep=clock.sleep)
    error = caught.value
    assert isinstance(error, TimeoutError) and isinstance(error, WekaError)
    assert str(error) == ("timed out after 3 s waiting for height 9 on node0 "
                          "(4 tries; last value: 0)")
    assert (error.what, error.tries, error.last_value, error.last_error) == (
        "height 9 on node0", 4, 0, None)


def test_the_number_of_tries_is_bounded_by_timeout_over_interval() -> None:
    """Tries at 0, 0.3, 0.6, 0.9 and a last one at the deadline (1.0): never past it."""
    clock = FakeClock(1000.0)
    start = clock.now
    predicate, calls = counting([False])
    with pytest.raises(WaitTimeout):
        wait_until(predicate, timeout=1.0, interval=0.3, what="x", clock=clock,
                   sleep=clock.sleep)
    assert calls[0] == 5
    assert clock.sleeps == pytest.approx([0.3, 0.3, 0.3, 0.1])
    assert clock.now == pytest.approx(start + 1.0)


def test_a_slow_predicate_is_still_bounded_by_the_deadline() -> None:
    clock = FakeClock(1000.0)
    calls = [0]

    def slow() -> bool:
        calls[0] += 1
        clock.now += 2.0  # each call takes longer than the whole timeout
        return False

    with pytest.raises(WaitTimeout):
        wait_until(slow, timeout=1.0, interval=0.1, what="x", clock=clock, sleep=clock.sleep)
    assert calls[0] == 1 and clock.sleeps == []


def test_retried_errors_count_as_not_yet_and_are_reported() -> None:
    clock = FakeClock(1000.0)
    calls = [0]

    def flaky() -> int:
        calls[0] += 1
        if calls[0] < 3:
            raise ConnectionRefusedError("nobody listens")
        return 42

    assert wait_until(flaky, timeout=5, interval=1, what="x", retry_on=(OSError,), clock=clock,
                      sleep=clock.sleep) == 42

    def down() -> int:
        raise ConnectionRefusedError("nobody listens")

    with pytest.raises(WaitTimeout, match=r"\(3 tries; last error: ConnectionRefusedError: "
                                          r"nobody listens\)$") as caught:
        wait_until(down, timeout=2, interval=1, what="x", retry_on=(OSError,), clock=clock,
                   sleep=clock.sleep)
    assert isinstance(caught.value.last_error, ConnectionRefusedError)


def test_last_value_and_last_error_are_both_reported() -> None:
    clock = FakeClock(1000.0)
    calls = [0]

    def alternating() -> list[int]:
        calls[0] += 1
        if calls[0] % 2:
            raise KeyError("height")
        return []

    with pytest.raises(WaitTimeout, match=r"last value: \[\]; last error: KeyError: 'height'"):
        wait_until(alternating, timeout=1, interval=0.5, what="x", retry_on=(KeyError,),
                   clock=clock, sleep=clock.sleep)


def test_other_errors_propagate_at_once() -> None:
    clock = FakeClock(1000.0)
    predicate_calls = [0]

    def exited() -> bool:
        predicate_calls[0] += 1
        raise RuntimeError("node0 exited")

    with pytest.raises(RuntimeError, match="node0 exited"):
        wait_until(exited, timeout=10, what="x", retry_on=(OSError,), clock=clock,
                   sleep=clock.sleep)
    assert predicate_calls[0] == 1 and clock.sleeps == []


def test_detail_is_appended_and_long_values_are_cut() -> None:
    clock = FakeClock(1000.0)
    with pytest.raises(WaitTimeout) as caught:
        wait_until(lambda: "", timeout=0, what="x", detail=lambda: "---- node0 log ----\nboom",
                   clock=clock, sleep=clock.sleep)
    assert str(caught.value).endswith("(1 try; last value: '')\n---- node0 log ----\nboom")
    with pytest.raises(WaitTimeout) as caught:
        wait_until(LongFalsy, timeout=0, what="x", clock=clock, sleep=clock.sleep)
    assert str(caught.value).endswith("LLL…)") and len(str(caught.value)) < 300


class LongFalsy:
    """A "not yet" value with a very long repr."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "L" * 1000


def test_on_the_real_clock() -> None:
    start = time.monotonic()
    with pytest.raises(WaitTimeout):
        wait_until(lambda: False, timeout=0.2, interval=0.05, what="x")
    assert 0.2 <= time.monotonic() - start < 2.0
    ready_at = time.monotonic() + 0.1
    assert wait_until(lambda: time.monotonic() >= ready_at, timeout=5, interval=0.02, what="x")


def test_async_twin_on_a_fake_clock() -> None:
    clock = FakeClock(1000.0)
    predicate, calls = counting([None, None, "ok"])

    async def main() -> object:
        return await wait_until_async(predicate, timeout=10, interval=0.25, what="x",
                                      clock=clock, sleep=clock.async_sleep)

    assert trio.run(main) == "ok"
    assert calls[0] == 3 and clock.sleeps == [0.25, 0.25]

    predicate, calls = counting([0])

    async def never() -> object:
        return await wait_until_async(predicate, timeout=1, interval=0.25, what="the mesh",
                                      clock=clock, sleep=clock.async_sleep)

    with pytest.raises(WaitTimeout, match=r"waiting for the mesh \(5 tries; last value: 0\)"):
        trio.run(never)
    assert calls[0] == 5


def test_async_twin_lets_other_tasks_run() -> None:
    """On trio's own clock and sleep: the condition is made true by another task."""
    async def main() -> None:
        done: list[bool] = []

        async def later() -> None:
            await trio.sleep(0.05)
            done.append(True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(later)
            assert await wait_until_async(lambda: done, timeout=5, interval=0.01,
                                          what="the other task") == [True]
        with pytest.raises(WaitTimeout):
            await wait_until_async(lambda: False, timeout=0.05, interval=0.01, what="never")

    trio.run(main)
