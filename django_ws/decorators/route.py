"""``ws_route``: a path plus hooks, compiled into a ``WebSocketHandler`` subclass.

A route collects marked functions (or takes a handler class as it is) and compiles
them into an ordinary subclass whose methods are those functions, so the DSL runs
on exactly the lifecycle, middleware chain and send path of the subclass API.
Signatures are checked when a hook is added, so mistakes fail at import.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.urls.resolvers import RegexPattern, RoutePattern

from ..handler import WebSocketHandler
from ..hooks import HookSpec, mark, marks_of
from . import marks
from .registry import RouteRegistry, routes

F = TypeVar("F", bound=Callable[..., Any])

#: How many positional arguments each hook kind is called with (ws first).
_POSITIONAL = {
    "on_open": 1,
    "on_close": 1,
    "on_error": 2,
    "on_message": 2,
    "periodic": 1,
    "background": 1,
}


def _url_kwarg_names(route: str) -> frozenset[str]:
    pattern = RegexPattern(route) if route.startswith("^") else RoutePattern(route)
    return frozenset(pattern.regex.groupindex)


def _describe(function: Any) -> str:
    return f"{function.__module__}.{function.__qualname__}"


class Route:
    """One WebSocket route: its path, name, middleware and hooks."""

    def __init__(
        self,
        route: str,
        *,
        name: str | None = None,
        middleware: Sequence[Any] = (),
        registry: RouteRegistry | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.route = route
        self.name = name
        self.middleware = tuple(middleware)
        self.options = options or {}
        self.registry = routes if registry is None else registry
        self.url_kwargs = _url_kwarg_names(route)
        self.hooks: list[tuple[HookSpec, Callable[..., Any]]] = []
        self.handler_class_given: type[WebSocketHandler] | None = None
        self._compiled: type[WebSocketHandler] | None = None
        self.registry.register(self)

    def __repr__(self) -> str:
        return f"<Route {self.route!r} name={self.name!r}>"

    # Decorating ---------------------------------------------------------------

    def __call__(self, target: F) -> F:
        """Serve ``target`` here: a handler class, or a (marked) function."""
        if isinstance(target, type):
            return self._take_class(target)  # type: ignore[return-value]
        specs = marks_of(target) or (HookSpec("on_message"),)
        for spec in specs:
            self._add(spec, target)
        return target

    def _take_class(self, handler_class: type) -> type:
        if not issubclass(handler_class, WebSocketHandler):
            raise ImproperlyConfigured(
                f"ws_route({self.route!r}) decorates {handler_class.__qualname__}, which "
                "is not a WebSocketHandler subclass. Subclass WebSocketHandler, or "
                "decorate a function."
            )
        if self.hooks or self.handler_class_given is not None:
            raise ImproperlyConfigured(
                f"ws_route({self.route!r}) already has a handler; a class route takes "
                "no other hooks."
            )
        handler_class.middleware = (*self.middleware, *handler_class.middleware)
        for option, value in self.options.items():
            setattr(handler_class, option, value)
        self.handler_class_given = handler_class
        self.registry.add_target(handler_class, self)
        return handler_class

    def _add(self, spec: HookSpec, function: Callable[..., Any]) -> None:
        if self.handler_class_given is not None:
            raise ImproperlyConfigured(
                f"ws_route({self.route!r}) serves the class "
                f"{self.handler_class_given.__qualname__}; add {_describe(function)} "
                "to that class as a method instead."
            )
        self._check_signature(spec, function)
        for existing, other in self.hooks:
            if (existing.kind, existing.message_type, existing.task_id) == (
                spec.kind,
                spec.message_type,
                spec.task_id,
            ) and spec.kind not in ("periodic",):
                what = spec.kind + (f"(type={spec.message_type!r})" if spec.message_type else "")
                raise ImproperlyConfigured(
                    f"ws_route({self.route!r}) has two {what} hooks: "
                    f"{_describe(other)} and {_describe(function)}. Keep one, or give "
                    "them different message types."
                )
        self.hooks.append((spec, function))
        self._compiled = None
        self.registry.add_target(function, self)

    def _check_signature(self, spec: HookSpec, function: Callable[..., Any]) -> None:
        positional = _POSITIONAL[spec.kind]
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            return
        url_kwargs = {name: None for name in self._accepted_kwargs(function)}
        try:
            signature.bind(*range(positional), **url_kwargs)
        except TypeError as error:
            arguments = ["ws", "data" if spec.kind == "on_message" else "error"][:positional]
            accepted = ", ".join([*arguments, *sorted(self.url_kwargs)])
            raise ImproperlyConfigured(
                f"{_describe(function)} cannot be a {spec.kind} hook of "
                f"ws_route({self.route!r}): {error}. It is called with ({accepted}) "
                "where URL kwargs are passed only if named in the signature or taken "
                "with **kwargs."
            ) from None

    def _accepted_kwargs(self, function: Callable[..., Any]) -> frozenset[str]:
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            return frozenset()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return self.url_kwargs
        names = {p.name for p in parameters if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
        return self.url_kwargs & names

    def on_open(self, function: F) -> F:
        """Add ``function(ws, **url_kwargs)`` as this route's ``on_open``."""
        self._add(HookSpec("on_open"), function)
        return function

    def on_close(self, function: F) -> F:
        """Add ``function(ws, **url_kwargs)`` as this route's ``on_close``."""
        self._add(HookSpec("on_close"), function)
        return function

    def on_error(self, function: F) -> F:
        """Add ``function(ws, error, **url_kwargs)`` as this route's ``on_error``."""
        self._add(HookSpec("on_error"), function)
        return function

    def on_message(self, function: Any = None, /, *, type: str | None = None) -> Any:
        """Add a message hook, for every message or for one ``type``."""
        marks.on_message(type=type)  # validates ``type``

        def decorate(function: F) -> F:
            self._add(HookSpec("on_message", message_type=type), function)
            return function

        return decorate if function is None else decorate(function)

    def periodic(self, seconds: float, *, immediate: bool = False) -> Callable[[F], F]:
        """Add ``function(ws, **url_kwargs)`` to run every ``seconds``."""
        spec = marks_of(marks.periodic(seconds, immediate=immediate)(_placeholder))[0]

        def decorate(function: F) -> F:
            self._add(spec, function)
            return function

        return decorate

    def background(self, task_id: str) -> Callable[[F], F]:
        """Add ``function(ws, **url_kwargs)`` as background task ``task_id``."""
        spec = marks_of(marks.background(task_id)(_placeholder))[0]

        def decorate(function: F) -> F:
            self._add(spec, function)
            return function

        return decorate

    # Compiling ----------------------------------------------------------------

    @property
    def handler_class(self) -> type[WebSocketHandler]:
        """The ``WebSocketHandler`` subclass this route serves (compiled once)."""
        if self.handler_class_given is not None:
            return self.handler_class_given
        if self._compiled is None:
            self._compiled = self._compile()
        return self._compiled

    def _compile(self) -> type[WebSocketHandler]:
        if not self.hooks:
            raise ImproperlyConfigured(
                f"ws_route({self.route!r}) has no hooks: decorate a function with it "
                "or add one with @route.on_message."
            )
        first = self.hooks[0][1]
        namespace: dict[str, Any] = {
            "__module__": first.__module__,
            "__qualname__": first.__qualname__,
            "__doc__": first.__doc__,
            "middleware": self.middleware,
            **self.options,
        }
        for index, (spec, function) in enumerate(self.hooks):
            method = self._method(spec, function)
            if spec.kind in ("periodic", "background") or spec.message_type is not None:
                namespace[f"_{spec.kind}_{index}_{function.__name__}"] = mark(method, spec)
            else:
                namespace[spec.kind] = method
        return type(first.__name__, (WebSocketHandler,), namespace)

    def _method(self, spec: HookSpec, function: Callable[..., Any]) -> Callable[..., Any]:
        raw = inspect.unwrap(function)
        names = tuple(sorted(self._accepted_kwargs(function)))
        if inspect.isasyncgenfunction(raw):
            if names:
                return lambda ws, *args: raw(ws, *args, **{n: ws.kwargs[n] for n in names})
            return raw
        call = raw if inspect.iscoroutinefunction(raw) else sync_to_async(raw)
        if not names and call is raw:
            return raw  # bound as a method as is: no wrapper on the message path
        if not names:

            async def method(ws: WebSocketHandler, *args: Any) -> Any:
                return await call(ws, *args)

        else:

            async def method(ws: WebSocketHandler, *args: Any) -> Any:
                return await call(ws, *args, **{n: ws.kwargs[n] for n in names})

        method.__name__, method.__qualname__ = raw.__name__, raw.__qualname__
        return method


def _placeholder(ws: Any) -> None:  # pragma: no cover - only carries a mark
    pass


def ws_route(
    route: str,
    *,
    name: str | None = None,
    middleware: Sequence[Any] = (),
    registry: RouteRegistry | None = None,
    **options: Any,
) -> Route:
    """Register a WebSocket route at ``route`` (Django ``path()`` syntax).

    Use it as a decorator on a function (its ``on_message`` unless marked
    otherwise) or on a ``WebSocketHandler`` subclass, or keep the returned route
    and add hooks with ``@route.on_open``, ``@route.on_message(type=...)``,
    ``@route.periodic(30)``, ``@route.background('feed')``, ``@route.on_close``.
    ``options`` set handler class attributes such as ``subprotocols`` or
    ``check_origin``.
    """
    for option in options:
        if not hasattr(WebSocketHandler, option):
            raise ImproperlyConfigured(
                f"ws_route({route!r}) got an unknown option {option!r}; options are "
                "WebSocketHandler class attributes such as 'subprotocols', "
                "'check_origin', 'codec' or 'max_message_size'."
            )
    return Route(route, name=name, middleware=middleware, registry=registry, options=options)
