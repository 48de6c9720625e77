"""The route registry: what ``@ws_route`` registered, as an explicit urlpatterns list.

Like Django's admin site, the registry is an object you can inspect and include:
``routes.urlpatterns`` is a list of ordinary ``path()`` entries, the router tries
them after the ws urlconf, and ``include(routes.urlpatterns)`` works in a
``ws_urls.py``. Registering the same path twice is an error.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from django.core.exceptions import ImproperlyConfigured
from django.urls import path, re_path

from ..handler import WebSocketHandler
from ..marks import describe, route_of, unmarked


class Route(Protocol):
    """What the registry needs of a route (``django_ws.decorators.Route``)."""

    route: str
    name: str | None

    @property
    def handler_class(self) -> type[WebSocketHandler]: ...

    def describe(self) -> str: ...


class RouteRegistry:
    """An ordered set of routes; ``routes`` is the project-wide one."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._targets: dict[Any, Route] = {}
        #: Bumped on every change so that routers know to rebuild.
        self.version = 0

    def __iter__(self) -> Any:
        return iter(self._routes.values())

    def __len__(self) -> int:
        return len(self._routes)

    def register(self, route: Route, target: Any) -> None:
        """Add ``route``, about to serve ``target``; a path registered twice raises."""
        existing = self._routes.get(route.route)
        if existing is not None and existing is not route:
            raise ImproperlyConfigured(
                f"The WebSocket path {route.route!r} is registered twice: by "
                f"{existing.describe()} and by {describe(target)}. Give one of them "
                "another path, or make the second a hook of the first route "
                "(room = ws_route(...); @room.on_message ...)."
            )
        self._routes[route.route] = route
        self.version += 1

    def unregister(self, route: Route) -> None:
        """Remove ``route`` (for tests that register routes of their own)."""
        self._routes.pop(route.route, None)
        self._targets = {t: r for t, r in self._targets.items() if r is not route}
        self.version += 1

    def add_target(self, target: Any, route: Route) -> None:
        """Remember that ``target`` (a function or class) is served by ``route``."""
        self._targets[unmarked(target)] = route
        self.version += 1

    def handler_for(self, target: Any) -> type[WebSocketHandler] | None:
        """Return the compiled handler class that serves ``target``, if any."""
        route = cast("Route | None", route_of(target))
        if route is None:
            try:
                route = self._targets.get(unmarked(target))
            except TypeError:  # unhashable target
                return None
        return None if route is None else route.handler_class

    @property
    def urlpatterns(self) -> list[Any]:
        """The registered routes as Django urlpatterns, in registration order."""
        return [
            (re_path if route.route.startswith("^") else path)(
                route.route, route.handler_class, name=route.name  # type: ignore[arg-type]
            )
            for route in self._routes.values()
        ]


#: The project-wide registry that ``@ws_route`` uses unless given another.
routes = RouteRegistry()
