"""How a connection closes when something goes wrong: codes, not tracebacks.

The client closed or vanished, a message was too big or not valid, a hook raised,
the client stopped reading: each ends in a documented close code (``status``) and
a log line, and the process keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from . import status
from .conf import get_settings
from .exceptions import MessageDecodeError
from .state import ABORTING, CLOSING, OPEN

if TYPE_CHECKING:
    from .outbox import Outbox
    from .state import ConnectionState

logger = logging.getLogger("django_ws")


class CloseHandling:
    """The close paths of ``Lifecycle``; it holds the state they change."""

    if TYPE_CHECKING:  # provided by Lifecycle (its slots) and WebSocketHandler
        _state: ConnectionState
        _outbox: Outbox
        _task: asyncio.Task[Any] | None
        close_code: int | None
        close_reason: str

        def close(self, code: int = ..., reason: str = ...) -> Awaitable[None]: ...
        async def on_error(self, error: Exception) -> None: ...

    else:  # no instance layout of its own: Lifecycle's slots hold the state
        __slots__ = ()

    def _client_closed(self, message: dict[str, Any]) -> None:
        """The server reported the socket closed: keep the first known code."""
        code = message.get("code", status.WS_1005_NO_STATUS_RECEIVED)
        self._outbox.drop_queued(code)
        if self._state is OPEN:
            self._state = CLOSING
            self.close_code = code
            self.close_reason = message.get("reason") or ""

    def _client_gone(self, error: BaseException) -> None:
        """A send failed: the client is gone, whatever the server reports later."""
        self._outbox.drop_queued(status.WS_1006_ABNORMAL_CLOSURE)
        if self._state is OPEN:
            self._state = CLOSING
            self.close_code = status.WS_1006_ABNORMAL_CLOSURE

    def _send_queue_full(self) -> None:
        self._abort(status.WS_1008_POLICY_VIOLATION, "Client too slow: send queue full")

    def _abort(self, code: int, reason: str) -> None:
        """Drop what is queued, end the lifecycle now, and try to send a close."""
        if self._state is not OPEN and self._state is not CLOSING:
            return
        self._state = ABORTING
        self.close_code, self.close_reason = code, reason
        self._outbox.drop_queued(code)
        logger.warning("Closing %r with %s: %s", self, code, reason)
        if self._task is not None:
            self._task.cancel()

    def _absorb_abort(self) -> None:
        """Let the cancellation that ``_abort`` caused end here (3.11+ bookkeeping)."""
        if self._task is not None and hasattr(self._task, "uncancel"):
            self._task.uncancel()

    async def _send_abort_close(self) -> None:
        message = {"type": "websocket.close", "code": self.close_code, "reason": self.close_reason}
        try:
            await asyncio.wait_for(
                self._outbox.send_past_queue(message), get_settings().close_timeout
            )
        except Exception:  # the client is not reading (or gone): give up
            logger.debug("Close frame to %r not taken by the server", self)

    async def _too_big(self, size: int, limit: int) -> None:
        logger.warning("Closing %r: message of %d bytes over the limit of %d", self, size, limit)
        await self.close(status.WS_1009_MESSAGE_TOO_BIG, "Message too big")

    async def _close_for_bad_message(self, error: MessageDecodeError) -> None:
        logger.warning("Closing %r: %s", self, error)
        await self._tell_on_error(error)
        await self.close(status.WS_1007_INVALID_FRAME_PAYLOAD_DATA, "Invalid message")

    async def _close_for_error(self, error: Exception) -> None:
        logger.error("Error in %r", self, exc_info=(type(error), error, error.__traceback__))
        await self._tell_on_error(error)
        self.close(status.WS_1011_INTERNAL_ERROR, "Internal server error")

    async def _tell_on_error(self, error: Exception) -> None:
        try:
            await self.on_error(error)
        except Exception:
            logger.exception("on_error of %r failed", self)
