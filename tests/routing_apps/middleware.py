"""Middleware for the chain tests, importable by dotted path as WS_MIDDLEWARE needs.

They record into ``EVENTS`` and ``BUILT`` (module globals that the tests clear),
never on themselves: one instance serves every connection of a handler class.
"""

from __future__ import annotations

from typing import Any

from django_ws import DenyConnection

EVENTS: list[Any] = []
BUILT: list[str] = []


class _Recording:
    name = ""

    def __init__(self, next: Any) -> None:
        self.next = next
        BUILT.append(self.name)

    async def __call__(self, ws: Any) -> Any:
        EVENTS.append((f"{self.name} before", ws.connected, ws.closed))
        result = await self.next(ws)
        EVENTS.append((f"{self.name} after", ws.connected, ws.closed))
        return result


class Outer(_Recording):
    name = "outer"


class Inner(_Recording):
    name = "inner"


class Tagging:
    """Set an attribute on the request, as auth middleware sets ``user``."""

    def __init__(self, next: Any) -> None:
        self.next = next

    async def __call__(self, ws: Any) -> Any:
        ws.request.tag = "set by middleware"
        return await self.next(ws)


class DenyUnauthorized:
    def __init__(self, next: Any) -> None:
        self.next = next

    async def __call__(self, ws: Any) -> Any:
        raise DenyConnection(status=401)


class DenyDefault:
    def __init__(self, next: Any) -> None:
        self.next = next

    async def __call__(self, ws: Any) -> Any:
        raise DenyConnection()


class ReturnsEarly:
    """Return without calling the next one: the connection is refused."""

    def __init__(self, next: Any) -> None:
        self.next = next

    async def __call__(self, ws: Any) -> Any:
        EVENTS.append("returned early")
        return None


class Explodes:
    def __init__(self, next: Any) -> None:
        self.next = next

    async def __call__(self, ws: Any) -> Any:
        raise RuntimeError("middleware bug")
