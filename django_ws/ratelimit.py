"""A token bucket for ``WS_MAX_MESSAGES_PER_SECOND``."""

from __future__ import annotations

import time


class RateLimiter:
    """Allow ``rate`` messages a second on average, in bursts of up to ``rate``.

    The bucket holds at least one token, so a rate below 1 (``0.5``: one message
    every two seconds) still admits the first message.
    """

    __slots__ = ("rate", "capacity", "_tokens", "_stamp")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(float(rate), 1.0)
        self._tokens = self.capacity
        self._stamp = time.monotonic()

    def allow(self) -> bool:
        """Take a token if one is left; refill by the time passed since last call."""
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
