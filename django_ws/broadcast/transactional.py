"""Broadcasts that wait for a database commit: ``broadcast_on_commit``'s machinery.

A broadcast that announces a write must not reach clients before the write is
visible (a client reloading on the message would not see the row), nor at all if
the write is rolled back. Django's ``transaction.on_commit`` gives exactly that,
savepoints included; this module hands it an already encoded message.

Failures at commit time are logged, not raised (``on_commit(robust=True)``): the
commit has happened by then, so an exception out of ``atomic()`` would report a
failure for work that succeeded (a view answering 500 for a saved order, a client
retrying it) and would stop Django from running the transaction's later
``on_commit`` callbacks. A ``BroadcastError`` (Redis unreachable: members in this
process got the message, other processes did not) is logged as an ERROR on the
``django_ws`` logger, naming the group; anything else is logged by Django.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

from ..exceptions import BroadcastError

logger = logging.getLogger("django_ws")


def publish_on_commit(
    group: str, publish: Callable[[], None], using: str | None = None
) -> None:
    """Call ``publish`` once the transaction of ``using`` commits, or now without one.

    Nothing is called on rollback, nor when the savepoint that was current at this
    call is rolled back. The database alias is checked here: an unknown one raises
    Django's ``ConnectionDoesNotExist`` at once.
    """

    # A named function, not a partial: Django's robust logging reads __qualname__.
    def broadcast_after_commit() -> None:
        try:
            publish()
        except BroadcastError as error:
            logger.error(
                "A broadcast to group %r after a commit did not reach every "
                "process: %s",
                group,
                error,
            )

    transaction.on_commit(broadcast_after_commit, using=using, robust=True)
