"""The built-in stream socket that ``{% ws_stream %}`` pages connect to.

``/ws/django-ws/stream/<flavor>/<token>`` (the prefix is ``WS_LIVE_STREAM_PATH``)
is mounted by django-ws's router next to the project's routes, and runs
``WS_MIDDLEWARE`` and the Origin check like any route. Its own middleware
verifies the signed token and refuses a bad one with HTTP 403 before accept;
the socket then joins the stream's group (offering ``ws_since`` as any client).

htmx and Turbo understand HTML text frames only, so this handler turns every
event its group delivers into the flavor's markup (``frames.py``): a fragment
payload into the swap, a history envelope into its fragment, a recovery frame
into nothing (``recovered: true``, the replay follows) or into a reload of the
page (``recovered: false``). A ``str`` payload goes as is. One event reaches all
of a process's members as one object, so ``FrameCache`` wraps it once per flavor.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any, ClassVar
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import re_path

from ..exceptions import DenyConnection
from ..handler import WebSocketHandler
from ..outbox import SENT
from .frames import FLAVORS, Fragment, frame_for, reload_frame
from .names import InvalidStreamToken, verify_stream

logger = logging.getLogger("django_ws")

#: Where the stream route is mounted unless ``WS_LIVE_STREAM_PATH`` says otherwise.
DEFAULT_STREAM_PATH = "ws/django-ws/stream/"
#: How many recent events ``FrameCache`` remembers.
CACHE_SIZE = 64
#: ``translate``'s answer for "reload the page" (the element id is the socket's).
RELOAD = "\x00reload"
#: ``FrameCache``'s answer for the same.
RELOAD_EVENT: dict[str, Any] = {"type": "websocket.send", "text": RELOAD}


def stream_path_prefix() -> str | None:
    """Return ``WS_LIVE_STREAM_PATH`` (``None``: the stream route is not mounted)."""
    value = getattr(settings, "WS_LIVE_STREAM_PATH", DEFAULT_STREAM_PATH)
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value.endswith("/")
        or value.startswith("/")
        or value == "/"
    ):
        raise ImproperlyConfigured(
            f"WS_LIVE_STREAM_PATH is {value!r}: it is a URL path prefix without a "
            f"leading slash and with a trailing one, such as {DEFAULT_STREAM_PATH!r}, "
            "or None to leave the live stream route out."
        )
    return value


class FrameCache:
    """The send event of each recent event, per flavor, made on first need.

    Keyed by the event object itself: a broadcast hands the same event to every
    member of the process, so the first member of a flavor pays for the JSON
    decoding and the wrapping, and the others for one dict lookup; all of them
    then send one shared event, as a plain broadcast does.
    """

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._events: OrderedDict[
            int, tuple[dict[str, Any], dict[str, dict[str, Any] | None]]
        ] = OrderedDict()

    def event(self, event: dict[str, Any], flavor: str) -> dict[str, Any] | None:
        """Return the send event for ``event`` in ``flavor``, or ``None`` for nothing.

        ``RELOAD_EVENT`` stands for "this page must reload" (its frame names the
        page's own element, so the handler makes it).
        """
        key = id(event)
        entry = self._events.get(key)
        if entry is None or entry[0] is not event:
            entry = (event, {})
            self._events[key] = entry
            if len(self._events) > self.size:
                self._events.popitem(last=False)
        made = entry[1]
        if flavor not in made:
            frame = translate(event, flavor)
            if frame is None:
                made[flavor] = None
            elif frame is RELOAD:
                made[flavor] = RELOAD_EVENT
            else:
                made[flavor] = {"type": "websocket.send", "text": frame}
        return made[flavor]


def translate(event: dict[str, Any], flavor: str) -> str | None:
    """Return what a ``flavor`` page receives for a group's ``event`` (or nothing)."""
    text = event.get("text")
    if text is None:
        return None  # a binary frame: neither client applies it
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("group"), str):
        if isinstance(data.get("recovered"), bool):
            return None if data["recovered"] else RELOAD
        if "offset" in data and "data" in data:
            data = data["data"]
    if isinstance(data, str):
        return data
    fragment = Fragment.from_data(data)
    if fragment is None:
        logger.debug("Live stream dropped a payload that is not a fragment: %.80r", text)
        return None
    return frame_for(flavor, fragment)


class StreamTokenMiddleware:
    """Refuse with HTTP 403 a stream socket whose token does not verify."""

    def __init__(self, next: Any) -> None:
        self.next = next

    async def __call__(self, ws: LiveStreamHandler) -> Any:
        try:
            ws.stream = verify_stream(ws.kwargs["token"])
            ws.flavor = ws.kwargs["flavor"]
        except InvalidStreamToken:
            logger.warning("Refused %r: invalid stream token", ws)
            raise DenyConnection(403, "invalid stream token") from None
        return await self.next(ws)


class LiveStreamHandler(WebSocketHandler):
    """A page's live stream: joins the signed stream's group, sends HTML frames."""

    middleware: ClassVar[Any] = [StreamTokenMiddleware]
    frames: ClassVar[FrameCache] = FrameCache()

    __slots__ = ("stream", "flavor")
    #: The stream (group) name, from the verified token.
    stream: str
    #: ``htmx`` or ``turbo``: the markup this socket's page applies.
    flavor: str

    @property
    def element_id(self) -> str:
        """The id of the page's stream element (``{% ws_stream %}`` renders it)."""
        return str(self.request.GET.get("el", "django-ws-stream"))

    async def on_open(self) -> None:
        await self.join(self.stream)

    async def on_message(self, data: Any) -> Any:
        """Ignore what the page sends: a stream carries changes one way."""
        return None

    def send_event(self, event: dict[str, Any]) -> Awaitable[None]:
        """Send ``event`` as this page's flavor of HTML, or nothing it cannot apply."""
        if event["type"] != "websocket.send":
            return super().send_event(event)
        made = self.frames.event(event, self.flavor)
        if made is None:
            return SENT
        if made is RELOAD_EVENT:
            made = {"type": "websocket.send", "text": reload_frame(self.flavor, self.element_id)}
        return super().send_event(made)


def stream_urlpatterns() -> list[Any]:
    """The stream route, as the router mounts it (empty when switched off)."""
    prefix = stream_path_prefix()
    if prefix is None:
        return []
    flavors = "|".join(FLAVORS)
    return [
        re_path(
            rf"^{re.escape(prefix)}(?P<flavor>{flavors})/(?P<token>[A-Za-z0-9_:\-]+)$",
            LiveStreamHandler,  # type: ignore[arg-type]
            name="django-ws-live-stream",
        )
    ]


def stream_url(
    token: str, flavor: str, *, since: tuple[str, str, int] | None = None, element_id: str
) -> str:
    """Return the path (and query) a page's stream element connects to."""
    prefix = stream_path_prefix()
    if prefix is None:
        raise ImproperlyConfigured(
            "{% ws_stream %} needs the live stream route, which WS_LIVE_STREAM_PATH = "
            "None switches off: remove that setting."
        )
    query = f"el={quote(element_id, safe='')}"
    if since is not None:
        group, epoch, offset = since
        offered = json.dumps({group: [epoch, offset]}, separators=(",", ":"))
        query += f"&ws_since={quote(offered, safe='')}"
    return f"/{prefix}{flavor}/{token}?{query}"
