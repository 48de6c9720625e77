"""The admin live view: every process's sockets, groups and backend state; closing sockets.

Staff only (``admin.site.admin_view``). It reads the snapshots the processes
keep in the operations store (``live.py``), so what it shows is at most a few
seconds old and, past ``WS_LIVE_VIEW_SAMPLE`` sockets per process, a sample
(said on the page). Closing goes to the owning process through the broadcast
backend (``live.send_close``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from ..broadcast import presence
from .backend_store import store_for_backend
from .config import get_operations_settings
from .live import ADMIN_CLOSE_CODE, send_close

#: Sockets per page, and groups listed (the most populous in the snapshots, with
#: their exact presence read from the backend).
PAGE_SIZE = 100
GROUPS_SHOWN = 100


def _snapshots() -> tuple[list[dict[str, Any]], str]:
    wanted = get_operations_settings()
    try:
        store = store_for_backend(wanted.ttl, limits=False)
        return store.read_snapshots(), ""
    except Exception as error:  # the backend is away: say so, show nothing
        return [], str(error) or type(error).__name__


def _presence(names: list[str]) -> dict[str, tuple[int, int]]:
    """Return ``(sockets, distinct users)`` of each group, across processes, or ``{}``."""
    if not names:
        return {}

    async def read() -> list[Any]:
        return await asyncio.gather(
            *(presence(name) for name in names), return_exceptions=True
        )

    found = async_to_sync(read)()
    return {
        name: (result.count, len(result.users))
        for name, result in zip(names, found)
        if not isinstance(result, BaseException)
    }


def live_view(request: HttpRequest) -> HttpResponse:
    """List the sockets of every live process, filtered by ``?user=`` or ``?route=``."""
    wanted = get_operations_settings()
    snapshots, error = _snapshots()
    now = time.time()
    user = request.GET.get("user", "")
    route = request.GET.get("route", "")
    rows = []
    groups: Counter[str] = Counter()
    for snapshot in sorted(snapshots, key=lambda s: (s["host"], s["pid"])):
        snapshot["age"] = max(0.0, now - snapshot["written"])
        for name, count in snapshot["groups"]:
            groups[name] += count
        for row in snapshot["sockets"]:
            if user and str(row["user"]) != user:
                continue
            if route and row["route"] != route:
                continue
            rows.append({**row, "process": snapshot["process"], "age": now - row["since"]})
    rows.sort(key=lambda row: row["since"])
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        **admin.site.each_context(request),
        "title": "WebSockets: live view",
        "enabled": wanted.live_view,
        "error": error,
        "processes": snapshots,
        "open_total": sum(s["open"] for s in snapshots),
        "sampled": any(s["sampled"] for s in snapshots),
        "page": page,
        "groups": _group_rows(groups.most_common(GROUPS_SHOWN)),
        "user_filter": user,
        "route_filter": route,
        "close_code": ADMIN_CLOSE_CODE,
    }
    return TemplateResponse(request, "admin/django_ws/live.html", context)


def _group_rows(sampled: list[tuple[str, int]]) -> list[dict[str, Any]]:
    exact = _presence([name for name, _ in sampled])
    rows = []
    for name, count in sampled:
        sockets, users = exact.get(name, (count, None))
        rows.append({"name": name, "sockets": sockets, "users": users})
    return rows


@require_POST
def close_view(request: HttpRequest) -> HttpResponse:
    """Close one socket (``connection``) or every socket of a user (``user``)."""
    connection = request.POST.get("connection") or None
    user = request.POST.get("user") or None
    back = reverse("admin:django_ws_live")
    if (connection is None) == (user is None):
        messages.error(request, "Name one socket or one user to close.")
        return HttpResponseRedirect(back)
    try:
        send_close(connection=connection, user=user)
    except Exception as error:
        messages.error(request, f"The close could not be sent: {error}")
        return HttpResponseRedirect(back)
    what = f"socket {connection}" if connection else f"every socket of user {user}"
    messages.success(request, f"Asked every process to close {what}.")
    return HttpResponseRedirect(back)
