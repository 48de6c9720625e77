"""Connection ids that are unique across the processes sharing a broadcast backend."""

from __future__ import annotations

import itertools
import os
import uuid


def _new_process_id() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


#: Identifies this process among those sharing a backend (renewed in forked children).
PROCESS_ID = _new_process_id()
_numbers = itertools.count(1)


def _after_fork() -> None:
    # A worker forked from a preloaded master must not share the master's id, or
    # its connection ids would collide with its siblings' and its own broadcasts
    # would be taken for theirs.
    global PROCESS_ID, _numbers
    PROCESS_ID = _new_process_id()
    _numbers = itertools.count(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def process_id() -> str:
    """Return this process's id (read it each time: a fork renews it)."""
    return PROCESS_ID


def new_connection_id() -> str:
    """Return a new id ``<process id>:<n>`` for a connection of this process."""
    return f"{PROCESS_ID}:{next(_numbers)}"
