"""django-ws settings: defaults, validation with fix-it messages, read lazily once.

Settings are read on first use (never at import) and cached; Django's
``setting_changed`` signal clears the cache so ``override_settings`` works in tests.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from .origin import validate_allowed_origins

DEFAULT_BROADCAST = {"BACKEND": "django_ws.broadcast.MemoryBackend"}


@dataclass(frozen=True)
class WebSocketSettings:
    """The validated ``WS_*`` settings, see the README's settings table."""

    middleware: tuple[str, ...] = ()
    autodiscover: bool = True
    check_origin: bool = True
    allowed_origins: tuple[str, ...] = ()
    max_message_size: int = 1024 * 1024
    max_send_queue: int = 1000
    max_messages_per_second: float | None = None
    close_timeout: float = 5.0
    ticket_max_age: int = 30
    broadcast: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_BROADCAST))


def _positive_number(name: str, value: Any, *, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        hint = " or None to turn it off" if allow_none else ""
        raise ImproperlyConfigured(
            f"{name} must be a positive number{hint}, got {value!r}."
        )
    return value


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"{name} must be True or False, got {value!r}.")
    return value


def _strings(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ImproperlyConfigured(
            f"{name} must be a list of strings, got {value!r}. "
            f"Write {name} = [{value!r}] for a single entry."
        )
    for item in value:
        if not isinstance(item, str):
            raise ImproperlyConfigured(
                f"{name} entries must be strings, got {item!r} in {value!r}."
            )
    return tuple(value)


def _broadcast(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("BACKEND"), str):
        raise ImproperlyConfigured(
            "WS_BROADCAST must be a dict with a 'BACKEND' dotted path, e.g. "
            "{'BACKEND': 'django_ws.broadcast.MemoryBackend'}; "
            f"got {value!r}."
        )
    return dict(value)


@functools.lru_cache(maxsize=None)
def get_settings() -> WebSocketSettings:
    """Return the validated settings, raising ``ImproperlyConfigured`` on bad values."""
    read = functools.partial(getattr, settings)
    return WebSocketSettings(
        middleware=_strings("WS_MIDDLEWARE", read("WS_MIDDLEWARE", [])),
        autodiscover=_bool("WS_AUTODISCOVER", read("WS_AUTODISCOVER", True)),
        check_origin=_bool("WS_CHECK_ORIGIN", read("WS_CHECK_ORIGIN", True)),
        allowed_origins=validate_allowed_origins(
            _strings("WS_ALLOWED_ORIGINS", read("WS_ALLOWED_ORIGINS", []))
        ),
        max_message_size=_positive_number(
            "WS_MAX_MESSAGE_SIZE", read("WS_MAX_MESSAGE_SIZE", 1024 * 1024)
        ),
        max_send_queue=_positive_number(
            "WS_MAX_SEND_QUEUE", read("WS_MAX_SEND_QUEUE", 1000)
        ),
        max_messages_per_second=_positive_number(
            "WS_MAX_MESSAGES_PER_SECOND",
            read("WS_MAX_MESSAGES_PER_SECOND", None),
            allow_none=True,
        ),
        close_timeout=_positive_number("WS_CLOSE_TIMEOUT", read("WS_CLOSE_TIMEOUT", 5)),
        ticket_max_age=_positive_number(
            "WS_TICKET_MAX_AGE", read("WS_TICKET_MAX_AGE", 30)
        ),
        broadcast=_broadcast(read("WS_BROADCAST", DEFAULT_BROADCAST)),
    )


_caches: list[Callable[[], None]] = [get_settings.cache_clear]


def clears_on_settings_change(clear: Callable[[], None]) -> Callable[[], None]:
    """Register ``clear`` to run whenever a ``WS_*`` or urlconf setting changes."""
    _caches.append(clear)
    return clear


@receiver(setting_changed)
def _clear_caches(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("WS_") or setting in ("ROOT_WS_URLCONF", "ROOT_URLCONF"):
        for clear in _caches:
            clear()
