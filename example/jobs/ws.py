"""Progress of a long job, pushed by a ``@background`` task that writes through the ORM.

The task starts when the socket opens and is cancelled when it closes, so the job
runs while someone watches it and picks up from the saved progress when the page
comes back (for work that must outlive the page, run it in a task queue and push
progress with ``broadcast_sync``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async

from django_ws import WebSocketHandler, background, ws_route
from django_ws.middleware import LoginRequiredMiddleware

from .models import Job

STEP = 10  # percent
STEP_SECONDS = 0.3

#: Close code for "no such job": 4000-4999 are the application's own.
NO_SUCH_JOB = 4404


def find_job(job_id: int, user: Any) -> Job | None:
    return Job.objects.filter(pk=job_id, owner=user).first()


@ws_route("ws/jobs/<int:job_id>", name="job")
class JobProgress(WebSocketHandler):
    """Send ``{"progress": n}`` now and after every step, until 100."""

    middleware = (LoginRequiredMiddleware,)

    async def on_open(self) -> None:
        self.job = await sync_to_async(find_job)(self.kwargs["job_id"], self.request.user)
        if self.job is None:
            await self.close(NO_SUCH_JOB, "No such job")
            return
        await self.send({"progress": self.job.progress})

    @background("job")
    async def work(self) -> AsyncIterator[dict[str, Any]]:
        job = self.job
        while job is not None and not job.done:
            await asyncio.sleep(STEP_SECONDS)  # the "work" of one step
            progress = await sync_to_async(job.advance)(STEP)
            yield {"progress": progress}
