"""Group history: which groups keep one, and the log each of them keeps.

``WS_BROADCAST["HISTORY"]`` maps fnmatch patterns on group names to a ``SIZE``
(messages kept) and a ``TTL`` (seconds they are kept). A group with history gives
each message a position: the log's ``epoch``, a string that changes whenever the
history is lost (a new process, or ``TTL`` seconds without a message), and an
``offset`` that grows by one per message. Everything here is synchronous and takes
the time as an argument, so it is tested without waiting.
"""

from __future__ import annotations

import functools
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from django.core.exceptions import ImproperlyConfigured

#: How many group names keep their pattern lookup cached (per backend).
RULES_CACHE_SIZE = 4096


@dataclass(frozen=True)
class HistoryPolicy:
    """How much history a group keeps: ``size`` messages for ``ttl`` seconds."""

    size: int
    ttl: float


def _policy(pattern: str, value: Any) -> HistoryPolicy:
    where = f"WS_BROADCAST['HISTORY'][{pattern!r}]"
    if not isinstance(value, dict) or set(value) != {"SIZE", "TTL"}:
        raise ImproperlyConfigured(
            f"{where} must be a dict with exactly the keys 'SIZE' and 'TTL', e.g. "
            f"{{'SIZE': 200, 'TTL': 600}}; got {value!r}."
        )
    size, ttl = value["SIZE"], value["TTL"]
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ImproperlyConfigured(
            f"{where}['SIZE'] must be a positive int (messages kept), got {size!r}."
        )
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
        raise ImproperlyConfigured(
            f"{where}['TTL'] must be a positive number of seconds, got {ttl!r}."
        )
    return HistoryPolicy(size, float(ttl))


class HistoryRules:
    """The ``HISTORY`` patterns, in order; the first that matches a group wins."""

    def __init__(self, config: Any = None) -> None:
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise ImproperlyConfigured(
                "WS_BROADCAST['HISTORY'] must be a dict of group name patterns, e.g. "
                f"{{'room-*': {{'SIZE': 200, 'TTL': 600}}}}; got {config!r}."
            )
        rules = []
        for pattern, value in config.items():
            if not isinstance(pattern, str) or not pattern:
                raise ImproperlyConfigured(
                    "WS_BROADCAST['HISTORY'] keys must be non-empty fnmatch patterns "
                    f"such as 'room-*', got {pattern!r}."
                )
            rules.append((pattern, _policy(pattern, value)))
        self.rules: tuple[tuple[str, HistoryPolicy], ...] = tuple(rules)
        # Bounded, and dropped with the backend when the settings change.
        self.policy: Callable[[str], HistoryPolicy | None] = functools.lru_cache(
            maxsize=RULES_CACHE_SIZE
        )(self._match)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def _match(self, group: str) -> HistoryPolicy | None:
        for pattern, policy in self.rules:
            if fnmatchcase(group, pattern):
                return policy
        return None


def new_epoch() -> str:
    """Return a fresh epoch: random, so a new process never reuses one."""
    return secrets.token_urlsafe(9)


@dataclass(frozen=True)
class Entry:
    """One message in a log: its offset, its prepared send event, when it came."""

    offset: int
    event: dict[str, Any]
    time: float


@dataclass(frozen=True)
class Recovery:
    """What a log can give a member that offers ``(epoch, offset)``.

    ``recovered`` is true when every message after the offered offset is still
    held: ``entries`` are they, in order. Otherwise ``entries`` is empty and
    ``epoch``/``offset`` are the log's current position.
    """

    recovered: bool
    epoch: str
    offset: int
    entries: tuple[Entry, ...] = ()


class HistoryLog:
    """One group's last ``size`` messages, each kept ``ttl`` seconds."""

    def __init__(self, policy: HistoryPolicy, now: float) -> None:
        self.policy = policy
        self.entries: deque[Entry] = deque(maxlen=policy.size)
        self._reset(now)

    def _reset(self, now: float) -> None:
        self.epoch = new_epoch()
        self.offset = 0
        self.entries.clear()
        self.touched = now

    def expired(self, now: float) -> bool:
        """Whether ``ttl`` seconds passed with no message: the history is lost."""
        return now - self.touched > self.policy.ttl

    def _trim(self, now: float) -> None:
        oldest = now - self.policy.ttl
        entries = self.entries
        while entries and entries[0].time < oldest:
            entries.popleft()

    def append(self, build: Callable[[str, int], dict[str, Any]], now: float) -> Entry:
        """Give the next position to a message; ``build(epoch, offset)`` makes it."""
        if self.expired(now):
            self._reset(now)
        self.offset += 1
        entry = Entry(self.offset, build(self.epoch, self.offset), now)
        self.entries.append(entry)  # the deque drops the oldest past ``size``
        self.touched = now
        return entry

    def since(self, epoch: str, offset: int, now: float) -> Recovery:
        """Return the messages after ``(epoch, offset)``, all of them or none."""
        self._trim(now)
        current = self.offset
        if epoch != self.epoch or offset > current:
            return Recovery(False, self.epoch, current)
        if offset == current:
            return Recovery(True, self.epoch, offset)
        entries = self.entries
        if not entries or entries[0].offset > offset + 1:
            return Recovery(False, self.epoch, current)  # part of the gap is gone
        start = offset + 1 - entries[0].offset
        return Recovery(True, self.epoch, offset, tuple(entries)[start:])


class HistoryStore:
    """Every history group's log in one process, created on first use.

    Logs whose history is lost are swept now and then, so groups that go quiet
    cost nothing after their ``TTL``.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.logs: dict[str, HistoryLog] = {}
        self._uses = 0

    def log(self, group: str, policy: HistoryPolicy) -> HistoryLog:
        """Return ``group``'s log; a new one (a new epoch) once the last expired."""
        now = self.clock()
        self._uses += 1
        if self._uses >= max(1024, len(self.logs)):  # amortized: O(1) per use
            self._uses = 0
            self.sweep(now)
        log = self.logs.get(group)
        if log is None or log.expired(now):
            log = self.logs[group] = HistoryLog(policy, now)
        return log

    def append(
        self,
        group: str,
        policy: HistoryPolicy,
        build: Callable[[str, int], dict[str, Any]],
    ) -> Entry:
        """Append a message to ``group``'s log (at a new epoch if it had expired)."""
        return self.log(group, policy).append(build, self.clock())

    def sweep(self, now: float) -> None:
        """Forget the logs whose history is lost (``TTL`` without a message)."""
        for group in [g for g, log in self.logs.items() if log.expired(now)]:
            del self.logs[group]
