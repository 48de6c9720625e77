"""Tasks tied to a socket: ``start_task``, ``sleep_loop``, ``start_ping``, marked tasks."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from asgiref.sync import sync_to_async
from django.utils import timezone

from .conf import get_settings
from .exceptions import ConnectionClosed
from .marks import HookKind, HookSpec
from .schedule import run_every

#: The cancel message of a task replaced by one started with the same id.
TASK_DUPLICATE_STARTED = "task-duplicate-started"
#: The cancel message of the tasks of a socket that closed.
TASK_WS_CLOSED = "task-websocket-closed"


class TaskMixin:
    """The task API of ``WebSocketHandler``: no task outlives its socket."""

    __slots__ = ("_tasks",)

    _tasks: dict[str, asyncio.Task[Any]] | None
    PING_INTERVAL: ClassVar[float]

    if TYPE_CHECKING:  # provided by WebSocketHandler

        @property
        def closed(self) -> bool: ...

        def send(self, data: Any) -> Awaitable[None]: ...

        def on_task_error(self, error: BaseException) -> Any: ...

    @property
    def tasks(self) -> dict[str, asyncio.Task[Any]]:
        """The tasks started with ``start_task`` that are still running, by id."""
        if self._tasks is None:  # made on first use: most sockets start none
            self._tasks = {}
        return self._tasks

    def start_task(
        self,
        task_id: str,
        coroutine: Callable[..., Coroutine[Any, Any, Any]] | Coroutine[Any, Any, Any],
        callback: Callable[[asyncio.Task[Any]], Any] | None = None,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> asyncio.Task[Any]:
        """Run ``coroutine`` as a task tied to this socket, replacing one of the same id."""
        if callable(coroutine):
            coroutine = coroutine(*(args or ()), **(kwargs or {}))
        previous = self.tasks.get(task_id)
        if previous is not None and not previous.done():
            previous.cancel(msg=TASK_DUPLICATE_STARTED)
        task = asyncio.get_running_loop().create_task(coroutine)  # type: ignore[arg-type]
        if callback is not None:
            task.add_done_callback(callback)
        task.add_done_callback(self._task_done)
        self.tasks[task_id] = task
        if self.closed:
            task.cancel(msg=TASK_WS_CLOSED)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        for task_id, current in list(self.tasks.items()):
            if current is task:
                del self.tasks[task_id]
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and not isinstance(error, ConnectionClosed):
            self._report_task_error(error)

    async def _cancel_tasks(self) -> None:
        """Cancel every task and let them finish (bounded) before ``on_close`` runs."""
        cancelled = [task for task in self.tasks.values() if not task.done()]
        for task in cancelled:
            task.cancel(msg=TASK_WS_CLOSED)
        if cancelled:
            await asyncio.wait(cancelled, timeout=get_settings().close_timeout)

    async def sleep_loop(
        self,
        coroutine: Callable[..., Awaitable[Any]],
        seconds: float,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """Await ``coroutine(*args, **kwargs)`` every ``seconds``, forever, drift-free."""
        await run_every(seconds, lambda: coroutine(*args, **kwargs))

    def start_ping(self) -> asyncio.Task[Any]:
        """Send ``{'ping': <ISO time>}`` every ``PING_INTERVAL`` seconds."""
        return self.start_task("ping", self.sleep_loop(self._ping, self.PING_INTERVAL))

    async def _ping(self) -> None:
        await self.send({"ping": timezone.now().isoformat()})

    def start_declared_tasks(self, tasks: Iterable[tuple[str, HookSpec]]) -> None:
        """Start the ``@periodic`` and ``@background`` hooks (after ``on_open``)."""
        for name, spec in tasks:
            method = getattr(self, name)
            if not (inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method)):
                method = sync_to_async(method)
            if spec.kind is HookKind.PERIODIC:
                assert spec.seconds is not None
                self.start_task(
                    f"periodic:{name}",
                    run_every(
                        spec.seconds,
                        method,
                        immediate=spec.immediate,
                        on_result=self.send,
                        on_error=self._report_task_error,
                    ),
                )
            else:
                assert spec.task_id is not None
                self.start_task(spec.task_id, self._stream(method))

    async def _stream(self, function: Callable[[], Any]) -> None:
        result = function()
        if inspect.isasyncgen(result):
            async for item in result:
                await self.send(item)
        else:
            value = await result
            if value is not None:
                await self.send(value)

    def _report_task_error(self, error: BaseException) -> None:
        result = self.on_task_error(error)
        if inspect.isawaitable(result):
            asyncio.ensure_future(result)
