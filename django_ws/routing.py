"""Routing a websocket scope to a handler class with Django's own URL resolver.

``path()``, ``re_path()``, converters, ``include()``, namespaces and ``reverse()``
all work because this is Django's resolver over one urlconf: the ws urlconf's
patterns first, then the routes that ``@ws_route`` registered.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, URLResolver, include, path
from django.urls import reverse as django_reverse
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RegexPattern

from .conf import clears_on_settings_change
from .decorators.registry import RouteRegistry
from .handler import WebSocketHandler
from .live.stream import stream_urlpatterns

#: Marks "use the settings" for ``urlconf`` arguments, as opposed to "no urlconf".
FROM_SETTINGS: Any = object()


#: How many resolved paths a router remembers before starting afresh.
_CACHE_SIZE = 4096


class _URLConf:
    """The combined urlconf: the ws urlconf module, then the decorated routes."""

    def __init__(self, patterns: list[Any]) -> None:
        self.urlpatterns = patterns


def ws_urlconf_name() -> str | None:
    """Return ``ROOT_WS_URLCONF`` or, when unset, ``ROOT_URLCONF``'s ``ws_urls`` sibling."""
    explicit = getattr(settings, "ROOT_WS_URLCONF", None)
    if explicit is not None:
        return str(explicit)
    root = getattr(settings, "ROOT_URLCONF", None)
    if not root:
        return None
    package, _, _ = str(root).rpartition(".")
    return f"{package}.ws_urls" if package else "ws_urls"


def import_ws_urlconf(name: str | ModuleType | None, *, explicit: bool) -> ModuleType | None:
    """Import the ws urlconf; a missing default is fine, a missing explicit one is not."""
    if name is None or isinstance(name, ModuleType):
        return name
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if not explicit and error.name == name:
            return None
        if explicit:
            raise ImproperlyConfigured(
                f"ROOT_WS_URLCONF is {name!r}, which cannot be imported ({error}). "
                "Create that module with a `urlpatterns` list, or point "
                "ROOT_WS_URLCONF at the module that has one."
            ) from error
        raise ImproperlyConfigured(
            f"The ws urlconf {name!r} (the ws_urls sibling of ROOT_URLCONF) fails to "
            f"import: {error}. Fix the import in that module."
        ) from error


def _walk(patterns: Iterable[Any]) -> Iterable[URLPattern]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns)
        else:
            yield pattern


class Router:
    """Resolve paths to ``(handler class, args, kwargs)``; built once, at startup."""

    def __init__(self, module: ModuleType | None, registry: RouteRegistry) -> None:
        self.registry = registry
        self.version = registry.version
        self.retired = False  # set when the settings it was built from change
        # The live stream route first: its prefix is django-ws's own.
        patterns: list[Any] = stream_urlpatterns()
        if module is not None:
            patterns.append(path("", include(module)))
        patterns += registry.urlpatterns
        self.urlconf = _URLConf(patterns)
        self.resolver = URLResolver(RegexPattern(r"^/"), self.urlconf)  # type: ignore[arg-type]
        self._targets: dict[Any, type[WebSocketHandler]] = {}
        self._cache: dict[str, tuple[type[WebSocketHandler], tuple[Any, ...], dict[str, Any]]] = {}
        for pattern in _walk(self.resolver.url_patterns):
            self._targets[pattern.callback] = self._handler_class(pattern)

    def _handler_class(self, pattern: URLPattern) -> type[WebSocketHandler]:
        target = pattern.callback
        if isinstance(target, type) and issubclass(target, WebSocketHandler):
            return target
        compiled = self.registry.handler_for(target)
        if compiled is not None:
            return compiled
        raise ImproperlyConfigured(
            f"The ws urlpattern {str(pattern.pattern)!r} points to {target!r}, which is "
            "not a WebSocketHandler subclass nor a @ws_route function. Point it at a "
            "handler class (path('ws', MySocket)) or decorate the function with "
            "@ws_route."
        )

    def handler_classes(self) -> set[type[WebSocketHandler]]:
        """Return every handler class that a route of this router serves."""
        return set(self._targets.values())

    @property
    def stale(self) -> bool:
        """Whether the settings or the registry changed since this router was built."""
        return self.retired or self.version != self.registry.version

    def resolve(self, path_info: str) -> tuple[type[WebSocketHandler], tuple[Any, ...], dict[str, Any]] | None:
        """Return the handler class and URL arguments for ``path_info``, or ``None``.

        Results are cached by path (the resolver is a pure function of it), so a
        busy route costs one dict lookup per connection instead of a regex walk.
        """
        cached = self._cache.get(path_info)
        if cached is None:
            try:
                match = self.resolver.resolve(path_info)
            except Resolver404:
                return None
            cached = (self._targets[match.func], tuple(match.args), match.kwargs)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[path_info] = cached
        handler_class, args, kwargs = cached
        return handler_class, args, dict(kwargs)

    def reverse(self, name: str, args: Iterable[Any] | None = None, kwargs: dict[str, Any] | None = None) -> str:
        """Return the path of the route called ``name``."""
        return django_reverse(name, urlconf=self.urlconf, args=args, kwargs=kwargs)  # type: ignore[arg-type]


_routers: dict[tuple[Any, int], Router] = {}


@clears_on_settings_change
def _retire_routers() -> None:
    for router in _routers.values():
        router.retired = True
    _routers.clear()


def get_router(urlconf: Any = FROM_SETTINGS, registry: RouteRegistry | None = None) -> Router:
    """Return the router for ``urlconf`` and ``registry``, rebuilt when either changes."""
    if registry is None:
        from .decorators.registry import routes

        registry = routes
    key = (urlconf, id(registry))
    router = _routers.get(key)
    if router is None or router.stale:
        if urlconf is FROM_SETTINGS:
            explicit = getattr(settings, "ROOT_WS_URLCONF", None) is not None
            module = import_ws_urlconf(ws_urlconf_name(), explicit=explicit)
        else:
            module = import_ws_urlconf(urlconf, explicit=True)
        router = _routers[key] = Router(module, registry)
    return router


def reverse(name: str, args: Iterable[Any] | None = None, kwargs: dict[str, Any] | None = None) -> str:
    """Return the URL path of the WebSocket route called ``name`` (``ns:name`` works)."""
    return get_router().reverse(name, args=args, kwargs=kwargs)
