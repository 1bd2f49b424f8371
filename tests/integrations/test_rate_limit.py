"""TokenBucket: pacing, bursts, deficits and thread safety, with a fake clock."""

from __future__ import annotations

import threading

import pytest

from integrations.rate_limit import TokenBucket


class FakeClock:
    """A clock that only moves when someone sleeps (optionally oversleeping) or advances it."""

    def __init__(self, oversleep: float = 0.0):
        self.now = 0.0
        self.oversleep = oversleep
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + self.oversleep

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("rate", "burst", "steps", "expected_waits"),
    [
        # a full bucket serves the burst at once, then one token per 1/rate
        (10, 5, [(0, 1)] * 6, [0, 0, 0, 0, 0, 0.1]),
        # the default burst is one second's worth of tokens
        (100, None, [(0, 100), (0, 1)], [0, 0.01]),
        # a request larger than the burst waits for its whole deficit
        (10, 5, [(0, 25)], [2.0]),
        # the deficit is paid before the next caller is served
        (10, 5, [(0, 25), (0, 10)], [2.0, 1.0]),
        # idle time refills the bucket, but never above the burst
        (10, 5, [(0, 5), (100, 10)], [0, 0.5]),
        # a partial refill counts: 0.2 s at 10/s is 2 tokens, 1 more costs 0.1 s
        (10, 5, [(0, 5), (0.2, 3)], [0, 0.1]),
        # the default burst is at least one token for slow rates
        (0.5, None, [(0, 1), (0, 1)], [0, 2.0]),
        # acquiring nothing never waits
        (1, 1, [(0, 1), (0, 0)], [0, 0]),
    ],
)
def test_waits(rate, burst, steps, expected_waits):
    clock = FakeClock()
    bucket = TokenBucket(rate, burst, clock=clock, sleep=clock.sleep)
    waits = []
    for advance, n in steps:
        clock.advance(advance)
        waits.append(bucket.acquire(n))
    assert waits == pytest.approx(expected_waits)
    assert clock.sleeps == pytest.approx([w for w in expected_waits if w > 0])


@pytest.mark.parametrize(
    ("rate", "burst", "n", "calls", "oversleep"),
    [
        # one token per call, the OS oversleeping by half a token interval each time
        (1000, 10, 1, 10_000, 0.0005),
        # Sinch-sized batches: 1,000 recipients a call at 5,000 messages/s, 2 ms oversleep
        (5000, None, 1000, 1000, 0.002),
        # exact sleeps, batches bigger than the burst
        (200, 50, 120, 500, 0.0),
    ],
)
def test_pacing_stays_accurate_over_many_calls(rate, burst, n, calls, oversleep):
    clock = FakeClock(oversleep=oversleep)
    bucket = TokenBucket(rate, burst, clock=clock, sleep=clock.sleep)
    for _ in range(calls):
        bucket.acquire(n)
    tokens = n * calls
    # the first `burst` tokens are free; every other token costs exactly 1/rate, so
    # oversleeping is absorbed by the refill instead of adding up
    expected = (tokens - bucket.burst) / rate
    assert clock.now == pytest.approx(expected, abs=oversleep + 1e-9)
    assert tokens / clock.now <= rate * 1.01 + bucket.burst / clock.now


def test_concurrent_callers_each_reserve_their_own_tokens():
    # The clock never moves and sleeping returns at once, so the k-th caller to take the
    # lock must be told to wait exactly k/rate: a lost update would repeat a wait.
    clock = FakeClock()
    bucket = TokenBucket(100, 1, clock=clock, sleep=lambda seconds: None)
    waits: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker():
        start.wait()
        mine = [bucket.acquire() for _ in range(250)]
        with lock:
            waits.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits) == pytest.approx([k / 100 for k in range(2000)])


@pytest.mark.parametrize(
    ("rate", "burst"),
    [
        (0, None),  # no rate at all
        (-5, None),  # negative rate
        (10, 0),  # a bucket that can never hold a token
    ],
)
def test_invalid_configuration(rate, burst):
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


def test_negative_acquire_is_refused():
    with pytest.raises(ValueError):
        TokenBucket(10).acquire(-1)
