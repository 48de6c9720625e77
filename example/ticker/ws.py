"""A live price ticker: a handler class with a ``@periodic`` method.

``@ws_route`` registers the class (outermost, so it sees the finished class) and
``@use_middleware`` adds this route's own middleware. The prices are made up: a
random walk per connection, seeded by the symbol.
"""

from __future__ import annotations

import random
from typing import Any

from django.utils import timezone
from exampleproject.middleware import ConnectionLogMiddleware

from django_ws import WebSocketHandler, periodic, use_middleware, ws_route


@ws_route("ws/ticker/<str:symbol>", name="ticker")
@use_middleware(ConnectionLogMiddleware)
class Ticker(WebSocketHandler):
    """Send ``{"symbol", "price", "change", "seq", "time"}`` now and every second."""

    async def on_open(self) -> None:
        self.symbol = self.kwargs["symbol"].upper()[:12]
        self.random = random.Random(self.symbol)
        self.opening = self.price = round(self.random.uniform(20, 500), 2)
        self.seq = 0
        await self.send(self.quote())

    @periodic(1)
    async def tick(self) -> dict[str, Any]:
        self.price = max(0.01, round(self.price * (1 + self.random.gauss(0, 0.004)), 2))
        self.seq += 1
        return self.quote()

    def quote(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "price": self.price,
            "change": round(self.price - self.opening, 2),
            "seq": self.seq,
            "time": timezone.now(),
        }
