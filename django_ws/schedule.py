"""The drift-free schedule behind ``sleep_loop`` and ``@periodic``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .exceptions import ConnectionClosed


async def run_every(
    seconds: float,
    function: Callable[[], Awaitable[Any]],
    *,
    immediate: bool = False,
    on_result: Callable[[Any], Any] | None = None,
    on_error: Callable[[Exception], Any] | None = None,
) -> None:
    """Await ``function()`` every ``seconds`` on a fixed grid, never overlapping itself.

    The first run is one period from now (at once with ``immediate``). A run that
    overruns its period skips the ticks it missed instead of bunching up. A
    non-None result goes to ``on_result`` (``send``). Without ``on_error`` an
    exception ends the schedule; with it, the schedule goes on. The socket closing
    (``ConnectionClosed``) ends it quietly.
    """
    loop = asyncio.get_running_loop()
    due = loop.time() + (0 if immediate else seconds)
    while True:
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            result = await function()
            if result is not None and on_result is not None:
                await on_result(result)
        except ConnectionClosed:
            return
        except Exception as error:
            if on_error is None:
                raise
            on_error(error)
        due += seconds
        now = loop.time()
        if due <= now:
            due += ((now - due) // seconds + 1) * seconds
