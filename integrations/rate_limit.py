"""In-process pacing: a thread-safe token bucket.

Each integration (a Sinch service plan, an Infobip account) owns one bucket sized to its
messages-per-second limit; every recipient of a batch costs one token.

The bucket keeps a *balance* that may go negative: `acquire(n)` takes its n tokens at
once under the lock and then sleeps, outside the lock, until the balance it left behind
has been paid back by the refill. Because refill is computed from the clock and never
from the time a caller asked to sleep, over-sleeping by the OS or slow callers never adds
up: after any number of calls, k tokens have been handed out no faster than
`burst + rate * elapsed`. Callers are served in the order they reached the lock, and a
request larger than the burst simply waits for its whole deficit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Paces callers to `rate_per_second` tokens a second, with bursts up to `burst`.

    `burst` defaults to one second's worth of tokens (at least 1). The bucket starts
    full, so the first `burst` tokens go out at once; pass a small `burst` for strict
    pacing from the first call. `clock` and `sleep` are injectable for tests.
    """

    def __init__(
        self,
        rate_per_second: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not rate_per_second > 0:
            raise ValueError(f"rate_per_second must be > 0, got {rate_per_second!r}")
        if burst is None:
            burst = max(float(rate_per_second), 1.0)
        if not burst > 0:
            raise ValueError(f"burst must be > 0, got {burst!r}")
        self.rate = float(rate_per_second)
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._updated = clock()

    def acquire(self, n: int = 1) -> float:
        """Take `n` tokens, blocking until they are paid for; return the seconds waited."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n!r}")
        if n == 0:
            return 0.0
        with self._lock:
            now = self._clock()
            elapsed = now - self._updated
            if elapsed > 0:
                self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
                self._updated = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait

    def __repr__(self) -> str:
        return f"TokenBucket(rate_per_second={self.rate:g}, burst={self.burst:g})"
