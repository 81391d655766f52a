"""A fake monotonic clock for code that takes `clock` and `sleep` as arguments."""

from __future__ import annotations


class FakeClock:
    """Monotonic seconds that move only when the code under test sleeps; records every
    sleep."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
