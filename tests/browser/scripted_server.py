"""A WebSocket server on 127.0.0.1 that plays a script, for the browser client's tests.

``ScriptedServer`` runs the ``websockets`` package's server in a thread of its own
(Playwright's sync API owns the test thread's event loop). One port serves the
test's pages, the shipped client files from ``django_ws/static/django_ws/`` and the
scripted sockets, so pages and sockets share an origin. It records the path (with
its query) of every WebSocket handshake it is offered, in order.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

if TYPE_CHECKING:
    from typing_extensions import Self

CLIENT_DIR = Path(__file__).resolve().parent.parent.parent / "django_ws" / "static" / "django_ws"
#: Seconds that starting or stopping the server may take.
TIMEOUT = 10.0

#: A socket's script: the connection and its number among the handshakes to its path.
Script = Callable[[ServerConnection, int], Awaitable[None]]


class ScriptedServer:
    """Serve ``pages`` (path -> HTML) and ``/static/<client file>``; run ``scripts``."""

    def __init__(self, pages: Mapping[str, str], scripts: Mapping[str, Script]) -> None:
        self.pages = pages
        self.scripts = scripts
        #: Paths, with their query, of every WebSocket handshake offered, in order.
        self.handshakes: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: Server | None = None

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def handshakes_to(self, path: str) -> list[str]:
        """The handshakes offered to ``path``, with their queries."""
        return [seen for seen in list(self.handshakes) if urlsplit(seen).path == path]

    def ws_since(self, number: int, path: str) -> str | None:
        """The raw ``ws_since`` JSON of handshake ``number`` to ``path``, if any."""
        query = parse_qs(urlsplit(self.handshakes_to(path)[number]).query)
        return query["ws_since"][0] if "ws_since" in query else None

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            self.handshakes.append(request.path)
            return None
        path = urlsplit(request.path).path
        if path in self.pages:
            return _response(200, "text/html; charset=utf-8", self.pages[path].encode())
        name = path.removeprefix("/static/")
        if path.startswith("/static/") and "/" not in name and (CLIENT_DIR / name).is_file():
            return _response(200, "text/javascript", (CLIENT_DIR / name).read_bytes())
        return _response(404, "text/plain", b"Not found")

    async def _handler(self, connection: ServerConnection) -> None:
        assert connection.request is not None  # the handshake is done
        path = urlsplit(connection.request.path).path
        script = self.scripts.get(path)
        if script is None:
            await connection.close(4004, "No script")
            return
        await script(connection, len(self.handshakes_to(path)) - 1)

    async def _start(self) -> None:
        self._server = await serve(
            self._handler, "127.0.0.1", 0, process_request=self._process_request
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def __enter__(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(TIMEOUT)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(TIMEOUT)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(TIMEOUT)
            self._loop.close()


def _response(status: int, content_type: str, body: bytes) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
        ]
    )
    reason = {200: "OK", 404: "Not Found"}[status]
    return Response(status, reason, headers, body)
