"""HTTP views through which the end-to-end tests read the server's state.

There is no ``ws_urls`` module next to this one: with ``ROOT_URLCONF`` pointing
here, the decorated routes that autodiscovery imported from ``ws.py`` serve alone.
"""

from __future__ import annotations

import asyncio

from django.http import HttpRequest, JsonResponse
from django.urls import path

from . import state

#: Coroutines of the tasks that ``@periodic`` and ``@background`` run.
MARKED_TASK_COROUTINES = ("run_every", "TaskMixin._stream")


async def debug_state(request: HttpRequest) -> JsonResponse:
    """Return the recorded events and how many periodic/background tasks are alive."""
    alive = [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "") in MARKED_TASK_COROUTINES
    ]
    return JsonResponse({"events": state.events, "marked_tasks": len(alive)})


urlpatterns = [path("debug/state", debug_state)]
