"""Compile a handler class once: its hooks from marks, then its limits and chain.

Both handler forms come through here. When a class is created, ``compile_hooks``
reads the hooks it declares once (the marks of its body, or the list a
``ws_route`` hands over), adapts sync hooks, and refuses two hooks in one place
with the same ``ImproperlyConfigured`` whichever form declared them. On the
class's first connection, ``record_for`` adds what depends on settings (limits,
the middleware chain) into one ``HandlerRecord``: one lookup per connection, one
cache, dropped when settings change.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from asgiref.sync import sync_to_async

from .chain import Next, build_chain
from .conf import clears_on_settings_change, get_settings
from .marks import LIFECYCLE_HOOKS, HookKind, HookSpec, describe, marks_of, two_hooks_error

#: A hook a class declares: the attribute that holds it, and what it is.
DeclaredHook = tuple[str, HookSpec]


def as_async(function: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Return ``function`` as an async callable; sync ones run in a worker thread."""
    if inspect.iscoroutinefunction(function):
        return function
    return sync_to_async(function)


@dataclass(frozen=True)
class HookTable:
    """The hooks of a handler class beyond its ``on_*`` methods."""

    #: The hooks the class's own body declares (its bases have tables of their own).
    declared: tuple[DeclaredHook, ...]
    #: ``on_message(type=...)`` hooks by message type, called as ``hook(ws, data)``.
    typed: Mapping[str, Callable[..., Awaitable[Any]]]
    #: ``periodic`` and ``background`` hooks to start after open, by attribute.
    tasks: tuple[DeclaredHook, ...]
    #: Whether ``on_open`` / ``on_close`` are the class's own, not the no-op defaults.
    runs_on_open: bool
    runs_on_close: bool


class Limits(NamedTuple):
    """A handler class's limits with the ``WS_*`` settings filled in."""

    check_origin: bool
    allowed_origins: tuple[str, ...]
    max_message_size: int
    max_send_queue: int
    max_messages_per_second: float | None


@dataclass(frozen=True)
class HandlerRecord:
    """Everything a connection needs to know about its class, in one lookup."""

    hooks: HookTable
    limits: Limits
    #: The middleware chain around the class's ``open_and_serve``.
    chain: Next


def declared_in_body(cls: type) -> list[DeclaredHook]:
    """Return the hooks that the marks in ``cls``'s own body declare."""
    return [(name, spec) for name, value in vars(cls).items() for spec in marks_of(value)]


def compile_hooks(
    cls: type, declared: Sequence[DeclaredHook] | None, *, base: type
) -> HookTable:
    """Read ``cls``'s hooks once and return its table (``declared`` or its marks).

    A method marked ``@on_open`` (etc.) under another name becomes the class's
    ``on_open``; sync ``on_*`` hooks are wrapped to run in a worker thread.
    Subclasses override their bases' hooks; two in one class body are an error.
    """
    own = tuple(declared_in_body(cls) if declared is None else declared)
    _check_unique(cls, own)
    for name, spec in own:
        if spec.kind in LIFECYCLE_HOOKS and spec.message_type is None:
            if name != spec.kind.value:
                setattr(cls, spec.kind.value, cls.__dict__[name])
    for kind in LIFECYCLE_HOOKS:
        hook = cls.__dict__.get(kind.value)
        if hook is not None and not inspect.iscoroutinefunction(hook):
            setattr(cls, kind.value, as_async(hook))
    typed: dict[str, Callable[..., Awaitable[Any]]] = {}
    tasks: dict[str, HookSpec] = {}
    for klass in reversed(cls.__mro__):
        if klass is cls:
            entries = own
        else:  # a handler base has its table; a plain mixin only its marks
            table = klass.__dict__.get("hook_table")
            entries = table.declared if table is not None else tuple(declared_in_body(klass))
        for name, spec in entries:
            if spec.kind is HookKind.ON_MESSAGE and spec.message_type is not None:
                typed[spec.message_type] = as_async(klass.__dict__[name])
            elif spec.kind.is_task:
                tasks[name] = spec
    return HookTable(
        declared=own,
        typed=typed,
        tasks=tuple(tasks.items()),
        runs_on_open=getattr(cls, "on_open") is not getattr(base, "on_open"),
        runs_on_close=getattr(cls, "on_close") is not getattr(base, "on_close"),
    )


def _check_unique(cls: type, declared: Iterable[DeclaredHook]) -> None:
    """Refuse two hooks for one place in ``cls``'s body (any number of periodic)."""
    taken: dict[tuple[Any, ...], str] = {
        (kind, None, None): kind.value for kind in LIFECYCLE_HOOKS if kind.value in vars(cls)
    }
    for name, spec in declared:
        if spec.kind is HookKind.PERIODIC:
            continue
        slot = (spec.kind, spec.message_type, spec.task_id)
        other = taken.setdefault(slot, name)
        if other != name:
            raise two_hooks_error(describe(cls), spec, other, f"{name} (marked @{spec})")


_records: dict[type, HandlerRecord] = {}
clears_on_settings_change(_records.clear)


def record_for(cls: Any) -> HandlerRecord:
    """Return ``cls``'s record, built on its first connection after a settings change."""
    record = _records.get(cls)
    if record is None:
        record = _records[cls] = HandlerRecord(
            hooks=cls.hook_table, limits=_limits(cls), chain=_chain(cls)
        )
    return record


def _limits(cls: Any) -> Limits:
    settings = get_settings()

    def pick(name: str) -> Any:
        value = getattr(cls, name)
        return getattr(settings, name) if value is None else value

    return Limits(
        check_origin=pick("check_origin"),
        allowed_origins=settings.allowed_origins,
        max_message_size=pick("max_message_size"),
        max_send_queue=pick("max_send_queue"),
        max_messages_per_second=pick("max_messages_per_second"),
    )


def _chain(cls: Any) -> Next:
    return build_chain(
        cls.open_and_serve,
        [*get_settings().middleware, *cls.middleware],
        where=f"WS_MIDDLEWARE or {cls.__qualname__}.middleware",
    )
