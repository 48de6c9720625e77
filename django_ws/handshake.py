"""The handshake's edges: who asked (``Origin``) and how to say no."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from . import status


def has_header(scope: Mapping[str, Any], name: bytes) -> bool:
    """Return whether the handshake has a header ``name`` (lowercase bytes)."""
    for header, _ in scope.get("headers", ()):
        if header == name:
            return True
    return False


async def refuse_handshake(
    scope: Mapping[str, Any], send: Callable[[Any], Awaitable[None]], http_status: int
) -> None:
    """Refuse a handshake with ``http_status`` where the server can send one, else 403.

    403 itself goes as a close before accept, which every server answers with 403:
    uvicorn 0.54 logs a spurious "returned without completing handshake" ERROR
    after a denial response (Kludex/uvicorn#3138), and refusals are routine.
    """
    if http_status != 403 and "websocket.http.response" in scope.get("extensions", {}):
        body = f"WebSocket connection refused: HTTP {http_status}".encode()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": http_status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": status.WS_1008_POLICY_VIOLATION})
