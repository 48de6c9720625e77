"""The one send path of a connection: ordered, bounded, awaited or not.

``Outbox.put`` hands a message to the ASGI server at once when nothing is queued.
When the server's ``send`` returns a coroutine (uvicorn, hypercorn, daphne), the
outbox takes its first step right here, as a task would: it usually finishes
without suspending, so neither an awaited ``send`` nor a fire-and-forget one costs
a task or a task switch. Any other awaitable (granian returns a future) is only
awaited, never stepped by hand; it counts as sent once it is done.

When the server applies back-pressure (the client is not reading) the rest of
that send moves to a drain task, and later messages queue behind it, in order, up
to ``limit``; past it the outbox calls ``on_overflow`` instead of growing without
bound. A close the server refuses for its code is sent again with the portable
code (``status.portable_close_code``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from types import CoroutineType
from typing import Any

from .exceptions import ConnectionClosed
from .status import portable_close_code

logger = logging.getLogger("django_ws")


class _Sent:
    """The awaitable of a message the server has already taken."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover - makes this a generator


SENT = _Sent()


class _Dropped:
    """The awaitable of a message that could not be sent: the socket is closed."""

    __slots__ = ("code",)

    def __init__(self, code: int | None) -> None:
        self.code = code

    def __await__(self) -> Generator[Any, None, None]:
        raise ConnectionClosed(self.code)
        yield  # pragma: no cover - makes this a generator


class PendingSend:
    """A queued message; awaiting it returns once the server has taken it."""

    __slots__ = ("message", "_waiter", "_error")

    def __init__(self, message: dict[str, Any]) -> None:
        self.message: dict[str, Any] | None = message
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None

    def _settle(self, error: BaseException | None = None) -> None:
        self.message = None
        self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    def __await__(self) -> Generator[Any, None, None]:
        if self.message is not None:
            self._waiter = asyncio.get_running_loop().create_future()
            yield from self._waiter
        elif self._error is not None:
            raise self._error


class _Resume:
    """Carry a send coroutine that suspended on its first step into a task."""

    __slots__ = ("_steps", "_first")

    def __init__(self, steps: Generator[Any, Any, Any], first: Any) -> None:
        self._steps = steps
        self._first = first

    def __await__(self) -> Generator[Any, Any, None]:
        steps, value = self._steps, self._first
        while True:
            try:
                sent = yield value
            except BaseException as error:  # cancellation included: pass it down
                try:
                    value = steps.throw(error)
                except StopIteration:
                    return
                continue
            try:
                value = steps.send(sent)
            except StopIteration:
                return


def _portable(message: dict[str, Any]) -> dict[str, Any] | None:
    """Return ``message`` with a portable close code, if it is a close that needs one."""
    if message.get("type") != "websocket.close":
        return None
    code = portable_close_code(message.get("code", 1000))
    return None if code is None else {**message, "code": code}


def _ignore_overflow() -> None:
    pass


def _ignore_lost(error: BaseException) -> None:
    pass


class Outbox:
    """Ordered, bounded delivery of ASGI send events for one connection."""

    __slots__ = (
        "_send",
        "_queue",
        "_drain_task",
        "limit",
        "_on_overflow",
        "_on_lost",
        "closed_code",
    )

    def __init__(
        self,
        send: Callable[[dict[str, Any]], Awaitable[None]],
        *,
        limit: int,
        on_overflow: Callable[[], None],
        on_lost: Callable[[BaseException], None],
    ) -> None:
        self._send = send
        # Made on first back-pressure: most sockets never need one, and an empty
        # deque costs more memory than the rest of the outbox.
        self._queue: deque[PendingSend] | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self.limit = limit
        self._on_overflow = on_overflow
        self._on_lost = on_lost
        self.closed_code: int | None = None

    def __len__(self) -> int:
        return 0 if self._queue is None else len(self._queue)

    def put(self, message: dict[str, Any]) -> _Sent | _Dropped | PendingSend:
        """Send ``message`` now if nothing is ahead of it, else queue it."""
        if self.closed_code is not None:
            return _Dropped(self.closed_code)
        if self._drain_task is not None:
            return self._enqueue(message)
        # Nothing ahead: step the server's send right here (this is every message's
        # and every broadcast member's path, so it is not a call of its own).
        try:
            sending = self._send(message)
            if type(sending) is not CoroutineType:
                return self._sent_when_done(message, sending)
            steps: Generator[Any, Any, Any] = sending.__await__()
            # A for loop takes the coroutine's first step without raising (and
            # allocating) a StopIteration when it finishes at once, as it usually does.
            for first in steps:
                break
            else:
                return SENT
        except Exception as error:
            return self._refused(message, error)
        # The server applies back-pressure: finish this send in a task, in order.
        return self._finish_in_task(message, _Resume(steps, first))

    def _sent_when_done(
        self, message: dict[str, Any], sending: Awaitable[None]
    ) -> _Sent | _Dropped | PendingSend:
        """Follow a send that is not a coroutine (a future): await it, never step it."""
        done = getattr(sending, "done", None)
        if done is not None and done() and sending.exception() is None:  # type: ignore[attr-defined]
            return SENT
        return self._finish_in_task(message, sending)

    def _finish_in_task(
        self, message: dict[str, Any], sending: Awaitable[None]
    ) -> PendingSend:
        pending = PendingSend(message)
        if self._queue is None:
            self._queue = deque()
        self._queue.append(pending)
        self._drain_task = asyncio.get_running_loop().create_task(
            self._drain(message, sending)
        )
        return pending

    def _refused(self, message: dict[str, Any], error: Exception) -> _Sent | _Dropped | PendingSend:
        """A send raised at once: try the portable close, else the client is gone."""
        replacement = _portable(message)
        if replacement is not None:
            logger.debug("Close %s refused by the server (%r); sending %s", message.get("code"), error, replacement["code"])
            return self.put(replacement)
        self._lost(error)
        return _Dropped(self.closed_code)

    def _enqueue(self, message: dict[str, Any]) -> _Dropped | PendingSend:
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        elif len(queue) >= self.limit:
            self._on_overflow()
            return _Dropped(self.closed_code)
        pending = PendingSend(message)
        queue.append(pending)
        return pending

    def put_close(self, message: dict[str, Any], code: int) -> _Sent | _Dropped | PendingSend:
        """Send the close ``message`` after what is queued; refuse all after it."""
        sent = self.put(message)
        if self.closed_code is None:
            self.closed_code = code
        return sent

    async def _drain(self, first: dict[str, Any], sending: Awaitable[None]) -> None:
        queue = self._queue
        assert queue is not None
        try:
            await self._send_or_replace(first, sending)
            if queue:  # ``drop_queued`` may have emptied it meanwhile
                queue.popleft()._settle()
            while queue:
                message: dict[str, Any] = queue[0].message  # type: ignore[assignment]
                await self._send_or_replace(message, self._send(message))
                if queue:
                    queue.popleft()._settle()
        except asyncio.CancelledError:
            pass
        except Exception as error:
            self._lost(error)
        finally:
            self._drain_task = None

    async def send_past_queue(self, message: dict[str, Any]) -> None:
        """Send ``message`` now, ahead of anything queued (the close after an abort)."""
        await self._send_or_replace(message, self._send(message))

    async def _send_or_replace(self, message: dict[str, Any], sending: Awaitable[None]) -> None:
        try:
            await sending
        except Exception:
            replacement = _portable(message)
            if replacement is None:
                raise
            await self._send(replacement)

    def _lost(self, error: BaseException) -> None:
        logger.debug("WebSocket send failed, client gone: %r", error)
        self._on_lost(error)

    def forget_owner(self) -> None:
        """Drop the owner's callbacks: its lifecycle is over, nothing is left to tell."""
        self._on_overflow = _ignore_overflow
        self._on_lost = _ignore_lost

    def drop_queued(self, code: int) -> None:
        """Refuse further messages; drop queued ones, failing their waiters."""
        if self.closed_code is None:
            self.closed_code = code
        if self._queue:
            error = ConnectionClosed(code)
            while self._queue:
                self._queue.popleft()._settle(error)
        self._queue = None
        task = self._drain_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
