"""The Django request that a handler sees as ``self.request``."""

from __future__ import annotations

import io
from typing import Any

from django.core.handlers.asgi import ASGIRequest

#: What ``ASGIRequest.__init__`` sets: reading any of these completes the request.
_BUILT_ON_FIRST_USE = frozenset(
    {
        "META",
        "path",
        "path_info",
        "script_name",
        "method",
        "content_type",
        "content_params",
        "resolver_match",
        "_stream",
        "_read_started",
        "_post_parse_error",
    }
)


class WebSocketRequest(ASGIRequest):
    """A Django request built from a websocket scope: method GET, no body.

    Headers, ``COOKIES``, ``GET``, ``META`` and ``path`` behave as in a view, so code
    written for views (sessions, auth, ``get_host()``) works on sockets unchanged.

    Django builds ``META`` by walking every header, which is most of the cost of a
    connection that never looks at its request. So construction only keeps the
    scope, and the rest of ``ASGIRequest.__init__`` runs on the first read of one
    of its attributes. Attributes set before that (``session``, ``user``) are kept.
    """

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    def __getattr__(self, name: str) -> Any:
        # Called only when normal lookup fails: before the request is complete.
        if name not in _BUILT_ON_FIRST_USE or "META" in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}"
            )
        set_before = dict(self.__dict__)
        ASGIRequest.__init__(self, {**self.scope, "method": "GET"}, io.BytesIO())
        self.__dict__.update(set_before)
        return getattr(self, name)
