"""``ws_route``: a path plus hooks, compiled into a ``WebSocketHandler`` subclass.

A route collects marked functions (or takes a handler class as it is) and compiles
them into an ordinary subclass whose methods are those functions, so the DSL runs
on exactly the lifecycle, middleware chain and send path of the subclass API.
Signatures are checked when a hook is added, so mistakes fail at import.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.urls.resolvers import RegexPattern, RoutePattern

from ..handler import WebSocketHandler
from ..marks import (
    HookKind,
    HookSpec,
    MarkedFunction,
    describe,
    marks_of,
    route_of,
    two_hooks_error,
    unmarked,
)
from . import hooks as marks
from .registry import RouteRegistry, routes

F = TypeVar("F", bound=Callable[..., Any])

#: The positional arguments each hook kind is called with (ws first).
_ARGUMENTS = {
    HookKind.ON_OPEN: ("ws",),
    HookKind.ON_CLOSE: ("ws",),
    HookKind.ON_ERROR: ("ws", "error"),
    HookKind.ON_MESSAGE: ("ws", "data"),
    HookKind.PERIODIC: ("ws",),
    HookKind.BACKGROUND: ("ws",),
}

#: Handler class attributes that ``ws_route(**options)`` may set.
OPTIONS = frozenset(
    name
    for name, hint in WebSocketHandler.__annotations__.items()
    if not name.startswith("_") and "ClassVar" in str(hint) and name != "middleware"
)


def _url_kwarg_names(route: str) -> frozenset[str]:
    pattern = RegexPattern(route) if route.startswith("^") else RoutePattern(route)
    return frozenset(pattern.regex.groupindex)


class Route:
    """One WebSocket route: its path, name, middleware and hooks.

    It joins its registry when it gets its first hook (or class), so the error
    for a path registered twice can name both functions.
    """

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

    def __repr__(self) -> str:
        return f"<Route {self.route!r} name={self.name!r}>"

    def describe(self) -> str:
        """Name what this route serves, for configuration errors."""
        if self.handler_class_given is not None:
            return describe(self.handler_class_given)
        return describe(self.hooks[0][1]) if self.hooks else f"ws_route({self.route!r})"

    # Decorating ---------------------------------------------------------------

    def __call__(self, target: F) -> F:
        """Serve ``target`` here: a handler class, or a (marked) function.

        A function without marks is the route's ``on_message``. The function comes
        back unchanged for its callers, carrying its marks and this route.
        """
        if isinstance(target, type):
            return self._take_class(target)  # type: ignore[return-value]
        if not callable(target):
            raise ImproperlyConfigured(
                f"ws_route({self.route!r}) decorates a function or a "
                f"WebSocketHandler subclass, got {target!r}."
            )
        specs = marks_of(target)
        if not specs:
            self._add(HookSpec(HookKind.ON_MESSAGE), target, implicit=True)
            specs = (HookSpec(HookKind.ON_MESSAGE),)
        else:
            for spec in specs:
                self._add(spec, target)
        routed: F = self._routed(target, specs)
        return routed

    def _take_class(self, handler_class: type) -> type:
        if not issubclass(handler_class, WebSocketHandler):
            raise ImproperlyConfigured(
                f"ws_route({self.route!r}) decorates {describe(handler_class)}, which "
                "is not a WebSocketHandler subclass. Subclass WebSocketHandler, or "
                "decorate a function."
            )
        if self.hooks or self.handler_class_given is not None:
            raise ImproperlyConfigured(
                f"ws_route({self.route!r}) already serves {self.describe()}; it cannot "
                f"also serve {describe(handler_class)}. Give the class a route of its "
                "own."
            )
        self.registry.register(self, handler_class)
        self.handler_class_given = handler_class
        handler_class.middleware = (*self.middleware, *handler_class.middleware)
        for option, value in self.options.items():
            setattr(handler_class, option, value)
        self.registry.add_target(handler_class, self)
        return handler_class

    def _add(
        self, spec: HookSpec, function: Callable[..., Any], *, implicit: bool = False
    ) -> None:
        if self.handler_class_given is not None:
            raise ImproperlyConfigured(
                f"ws_route({self.route!r}) serves the class "
                f"{describe(self.handler_class_given)}; add {describe(function)} "
                "to that class as a method instead."
            )
        self._check_signature(spec, function, implicit=implicit)
        for existing, other in self.hooks:
            if existing.same_slot(spec):
                raise two_hooks_error(
                    f"ws_route({self.route!r})", spec, describe(other), describe(function)
                )
        if not self.hooks:
            self.registry.register(self, function)
        self.hooks.append((spec, function))
        self._compiled = None
        self.registry.add_target(function, self)

    def _routed(self, function: Any, specs: tuple[HookSpec, ...]) -> Any:
        raw = unmarked(function)
        if route_of(function) is self:
            specs = marks_of(function) + specs
        return MarkedFunction(raw, specs, route=self)

    def _check_signature(
        self, spec: HookSpec, function: Callable[..., Any], *, implicit: bool = False
    ) -> None:
        raw = unmarked(function)
        if inspect.isgeneratorfunction(raw):
            raise ImproperlyConfigured(
                f"{describe(function)} is a generator; the @{spec} hook of "
                f"ws_route({self.route!r}) must be a function ('def' or 'async def'). "
                "To stream values, make it an 'async def' with 'yield' under "
                "@background."
            )
        if inspect.isasyncgenfunction(raw) and spec.kind is not HookKind.BACKGROUND:
            raise ImproperlyConfigured(
                f"{describe(function)} is an async generator; only a @background hook "
                f"can stream values, not the @{spec} hook of ws_route({self.route!r}). "
                "Return the value to send instead of yielding it."
            )
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):  # a builtin or C callable: cannot tell
            return
        arguments = _ARGUMENTS[spec.kind]
        url_kwargs = dict.fromkeys(self._accepted_kwargs(function))
        try:
            signature.bind(*arguments, **url_kwargs)
        except TypeError as error:
            accepted = ", ".join([*arguments, *sorted(self.url_kwargs)])
            raise ImproperlyConfigured(
                f"{describe(function)} cannot be the @{spec} hook of "
                f"ws_route({self.route!r}): {error}. It is called with ({accepted}); "
                "URL kwargs are passed only if named in the signature or taken "
                "with **kwargs."
                + (
                    " A function under @ws_route without a hook decorator below it "
                    "is the route's on_message; if a hook decorator is above "
                    "@ws_route, move @ws_route to the top."
                    if implicit
                    else ""
                )
            ) from None

    def _accepted_kwargs(self, function: Callable[..., Any]) -> frozenset[str]:
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            return frozenset()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return self.url_kwargs
        names = {
            p.name
            for p in parameters
            if p.kind is not inspect.Parameter.POSITIONAL_ONLY
        }
        return self.url_kwargs & names

    def _hook(self, function: Any, spec: HookSpec) -> Any:
        if marks_of(function) and route_of(function) is None:
            raise ImproperlyConfigured(
                f"{describe(function)} is already marked "
                f"@{', @'.join(map(str, marks_of(function)))}; it cannot also be "
                f"added with @route.{spec.kind.value}. Register it once: "
                f"ws_route({self.route!r})({function.__name__}) takes its marks."
            )
        self._add(spec, function)
        return self._routed(function, (spec,))

    def on_open(self, function: F) -> F:
        """Add ``function(ws, **url_kwargs)`` as this route's ``on_open``."""
        return self._hook(function, HookSpec(HookKind.ON_OPEN))  # type: ignore[no-any-return]

    def on_close(self, function: F) -> F:
        """Add ``function(ws, **url_kwargs)`` as this route's ``on_close``."""
        return self._hook(function, HookSpec(HookKind.ON_CLOSE))  # type: ignore[no-any-return]

    def on_error(self, function: F) -> F:
        """Add ``function(ws, error, **url_kwargs)`` as this route's ``on_error``."""
        return self._hook(function, HookSpec(HookKind.ON_ERROR))  # type: ignore[no-any-return]

    def on_message(self, function: Any = None, /, *, type: str | None = None) -> Any:
        """Add a message hook, for every message or for one ``type``."""

        def decorate(function: F) -> F:
            return self._hook(function, marks.message_spec(type, function))  # type: ignore[no-any-return]

        return decorate if function is None else decorate(function)

    def periodic(
        self, seconds: float = marks._MISSING, *, immediate: bool = False
    ) -> Callable[[F], F]:
        """Add ``function(ws, **url_kwargs)`` to run every ``seconds``."""
        if callable(seconds):
            marks.periodic(seconds)  # raises the bare-decorator error

        def decorate(function: F) -> F:
            period = None if seconds is marks._MISSING else seconds
            spec = marks.periodic_spec(period, immediate, function)
            return self._hook(function, spec)  # type: ignore[no-any-return]

        return decorate

    def background(self, task_id: str = marks._MISSING) -> Callable[[F], F]:
        """Add ``function(ws, **url_kwargs)`` as background task ``task_id``."""
        if callable(task_id):
            marks.background(task_id)  # raises the bare-decorator error

        def decorate(function: F) -> F:
            given = None if task_id is marks._MISSING else task_id
            return self._hook(function, marks.background_spec(given, function))  # type: ignore[no-any-return]

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
        first = unmarked(self.hooks[0][1])
        namespace: dict[str, Any] = {
            "__module__": first.__module__,
            "__qualname__": first.__qualname__,
            "__doc__": first.__doc__,
            "middleware": self.middleware,
            **self.options,
        }
        declared: list[tuple[str, HookSpec]] = []
        for index, (spec, function) in enumerate(self.hooks):
            if spec.kind.is_task or spec.message_type is not None:
                # Named after the function where that shadows nothing, so task ids
                # read ``periodic:tick``.
                attribute = function.__name__
                if attribute in namespace or hasattr(WebSocketHandler, attribute):
                    attribute = f"_{spec.kind.value}_{index}_{attribute}"
            else:
                attribute = spec.kind.value
            namespace[attribute] = self._method(function)
            declared.append((attribute, spec))
        # The route's hooks go to the class as they are: their marks are not read
        # again, and the class runs the same checks as a hand-written one.
        return types.new_class(
            first.__name__,
            (WebSocketHandler,),
            {"declared_hooks": tuple(declared)},
            lambda body: body.update(namespace),
        )

    def _method(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """Return ``function`` as a method of the compiled class, URL kwargs passed."""
        raw = unmarked(function)
        names = tuple(sorted(self._accepted_kwargs(function)))
        if inspect.isasyncgenfunction(raw):
            if not names:
                return raw  # type: ignore[no-any-return]

            async def stream(ws: WebSocketHandler, *args: Any) -> AsyncIterator[Any]:
                async for item in raw(ws, *args, **{n: ws.kwargs[n] for n in names}):
                    yield item

            return _named(stream, raw)
        call = raw if inspect.iscoroutinefunction(raw) else sync_to_async(raw)
        if not names and call is raw:
            return raw  # bound as a method as is: no wrapper on the message path
        if not names:

            async def method(ws: WebSocketHandler, *args: Any) -> Any:
                return await call(ws, *args)

        else:

            async def method(ws: WebSocketHandler, *args: Any) -> Any:
                return await call(ws, *args, **{n: ws.kwargs[n] for n in names})

        return _named(method, raw)


def _named(method: F, function: Callable[..., Any]) -> F:
    method.__name__, method.__qualname__ = function.__name__, function.__qualname__
    method.__doc__ = function.__doc__
    return method


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
    if not isinstance(route, str):
        where = f" above {describe(route)}" if callable(route) else ""
        raise ImproperlyConfigured(
            f"ws_route needs a path first: write @ws_route('chat/<str:room>'){where}, "
            f"not {'a bare @ws_route' if where else repr(route)}."
        )
    for option in options:
        if option not in OPTIONS:
            raise ImproperlyConfigured(
                f"ws_route({route!r}) got an unknown option {option!r}. Options are "
                f"name, middleware, registry and the handler attributes "
                f"{', '.join(sorted(OPTIONS))}."
            )
    return Route(
        route, name=name, middleware=middleware, registry=registry, options=options
    )
