"""The one send path of a connection: ordered, bounded, awaited or not.

``Outbox.put`` hands a message to the ASGI server at once when nothing is queued,
stepping the server's ``send`` coroutine synchronously: with uvicorn that finishes
without suspending, so neither an awaited ``send`` nor a fire-and-forget one costs
a task or a task switch. Only when the server applies back-pressure (the client is
not reading) does the rest of that send move to a drain task, and later messages
queue behind it, in order, up to ``limit``; past it the outbox calls ``on_overflow``
instead of growing without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from .exceptions import ConnectionClosed

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
        steps: Generator[Any, Any, Any] = self._send(message).__await__()  # type: ignore[assignment]
        try:
            # A for loop takes the coroutine's first step without raising (and
            # allocating) a StopIteration when it finishes at once, as it usually does.
            for first in steps:
                break
            else:
                return SENT
        except Exception as error:
            self._lost(error)
            return _Dropped(self.closed_code)
        # The server applies back-pressure: finish this send in a task, in order.
        pending = PendingSend(message)
        if self._queue is None:
            self._queue = deque()
        self._queue.append(pending)
        self._drain_task = asyncio.get_running_loop().create_task(
            self._drain(_Resume(steps, first))
        )
        return pending

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

    async def _drain(self, resume: _Resume | None) -> None:
        queue = self._queue
        assert queue is not None
        try:
            if resume is not None:
                await resume
                if queue:  # ``drop_queued`` may have emptied it meanwhile
                    queue.popleft()._settle()
            while queue:
                await self._send(queue[0].message)  # type: ignore[arg-type]
                if queue:
                    queue.popleft()._settle()
        except asyncio.CancelledError:
            pass
        except Exception as error:
            self._lost(error)
        finally:
            self._drain_task = None

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
