"""A token bucket for ``WS_MAX_MESSAGES_PER_SECOND``."""

from __future__ import annotations

import time


class RateLimiter:
    """Allow ``rate`` messages a second on average, in bursts of up to ``rate``."""

    __slots__ = ("rate", "_tokens", "_stamp")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = rate
        self._stamp = time.monotonic()

    def allow(self) -> bool:
        """Take a token if one is left; refill by the time passed since last call."""
        now = time.monotonic()
        self._tokens = min(self.rate, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
