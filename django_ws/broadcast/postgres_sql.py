"""What the PostgreSQL backend says to the database, and what its NOTIFYs carry.

One broadcast is one statement: ``pg_notify`` alone for a small message, with an
insert into ``django_ws_payload`` for one too large for a NOTIFY, and for a group
with history an upsert of the group's log row (its row lock orders the group's
broadcasts, its ``RETURNING`` gives the offset), an insert of the message, the
delete of the message that falls out of ``SIZE``, and the NOTIFY.

A NOTIFY is text of at most ``NOTIFY_LIMIT`` bytes, and PostgreSQL drops a
NOTIFY that repeats one of the same transaction: each plain broadcast carries a
serial number of its process, each history message its offset, so none repeats.
Payloads (fields separated by ``\\n``):

- ``t``/``b`` sender, serial, delivered-here flag, excluded ids, then the text or
  the bytes in base64;
- ``r`` the same header, then the id of the ``django_ws_payload`` row;
- ``h`` excluded ids, epoch, offset, then the data (encoded JSON);
- ``H`` (empty), epoch, offset: data and excluded ids are in ``django_ws_group_message``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

#: PostgreSQL refuses a NOTIFY payload of 8000 bytes or more.
NOTIFY_LIMIT = 8000
#: Room left for the SQL-built part of a history NOTIFY (epoch and offset).
HISTORY_HEADER_ROOM = 64

#: The channel of a group: the prefix and a hash, since a channel name is an
#: identifier of at most 63 bytes and a group name may be longer.
CHANNEL_HASH_BYTES = 16


def channel(prefix: str, group: str) -> str:
    """Return the NOTIFY channel of ``group``."""
    digest = hashlib.blake2b(group.encode(), digest_size=CHANNEL_HASH_BYTES)
    return f"{prefix}_{digest.hexdigest()}"


def quoted(identifier: str) -> str:
    """Return ``identifier`` quoted for LISTEN/UNLISTEN (channels are ours: no quote)."""
    return f'"{identifier}"'


# Plain broadcasts ---------------------------------------------------------------

NOTIFY = "SELECT pg_notify(%s, %s)"

#: Params: is_text, body, payload ttl (s), channel, header.
NOTIFY_STORED = """
WITH stored AS (
    INSERT INTO django_ws_payload (is_text, body, expires)
    VALUES (%s, %s, clock_timestamp() + make_interval(secs => %s))
    RETURNING id
)
SELECT pg_notify(%s, %s || stored.id::text) FROM stored
"""

SELECT_STORED = "SELECT is_text, body FROM django_ws_payload WHERE id = %s"


@dataclass(frozen=True)
class Plain:
    """A plain broadcast as its NOTIFY carries it."""

    sender: str
    delivered_here: bool
    exclude: frozenset[str]
    message: dict[str, Any] | None  # None: stored, read row ``stored_id``
    stored_id: int = 0


def _header(kind: str, sender: str, serial: int, here: bool, exclude: frozenset[str]) -> str:
    return f"{kind}{sender}\n{serial}\n{'1' if here else ''}\n{','.join(sorted(exclude))}\n"


def plain_notify(
    message: dict[str, Any],
    exclude: frozenset[str],
    sender: str,
    serial: int,
    delivered_here: bool,
) -> tuple[str, tuple[bool, bytes] | None]:
    """Return the NOTIFY payload of a plain broadcast, or its header and the row.

    The second item is ``None`` when the message fits in the NOTIFY; else it is
    ``(is_text, row body)`` to store (the excluded ids, ``\n``, the frame: a long
    exclusion list never makes the NOTIFY too long either), and the payload is
    the header that the row id ends. Text with a NUL character is stored too
    (PostgreSQL text cannot carry it).
    """
    text = message.get("text")
    if text is not None:
        if "\x00" not in text:
            payload = _header("t", sender, serial, delivered_here, exclude) + text
            if len(payload.encode()) < NOTIFY_LIMIT:
                return payload, None
        is_text, body = True, text.encode()
    else:
        body = bytes(message["bytes"])
        payload = _header("b", sender, serial, delivered_here, exclude)
        payload += base64.b64encode(body).decode()
        if len(payload.encode()) < NOTIFY_LIMIT:
            return payload, None
        is_text = False
    row = ",".join(sorted(exclude)).encode() + b"\n" + body
    return _header("r", sender, serial, delivered_here, frozenset()), (is_text, row)


def decode_plain(payload: str) -> Plain:
    """Unpack a plain NOTIFY payload; raise ``ValueError`` if malformed."""
    kind = payload[:1]
    sender, _serial, here, exclude, body = payload[1:].split("\n", 4)
    excluded = frozenset(exclude.split(",")) if exclude else frozenset()
    if kind == "t":
        message: dict[str, Any] | None = {"type": "websocket.send", "text": body}
    elif kind == "b":
        message = {"type": "websocket.send", "bytes": base64.b64decode(body, validate=True)}
    elif kind == "r":
        return Plain(sender, here == "1", excluded, None, int(body))
    else:
        raise ValueError(f"Unknown payload kind {kind!r}")
    return Plain(sender, here == "1", excluded, message)


def stored_message(is_text: bool, row: bytes) -> tuple[frozenset[str], dict[str, Any]]:
    """Return the excluded ids and the send event of a ``django_ws_payload`` row."""
    exclude, _, body = bytes(row).partition(b"\n")
    excluded = frozenset(exclude.decode().split(",")) if exclude else frozenset()
    if is_text:
        return excluded, {"type": "websocket.send", "text": body.decode()}
    return excluded, {"type": "websocket.send", "bytes": body}


# Groups with history --------------------------------------------------------------

#: Named params: ns, group, new_epoch, ttl, size, data, exclude, channel, inline,
#: announced_exclude (the excluded ids when inline, else "": read from the row).
#: The log row starts over (new epoch, offset 1, old messages deleted) once it
#: has expired, as a Redis key would have.
PUBLISH_HISTORY = """
WITH log AS (
    INSERT INTO django_ws_group_log AS l
        (namespace, group_name, epoch, last_offset, expires)
    VALUES (%(ns)s, %(group)s, %(new_epoch)s, 1,
            clock_timestamp() + make_interval(secs => %(ttl)s))
    ON CONFLICT (namespace, group_name) DO UPDATE SET
        epoch = CASE WHEN l.expires < clock_timestamp()
                     THEN EXCLUDED.epoch ELSE l.epoch END,
        last_offset = CASE WHEN l.expires < clock_timestamp()
                           THEN 1 ELSE l.last_offset + 1 END,
        expires = EXCLUDED.expires
    RETURNING l.epoch, l.last_offset
), message AS (
    INSERT INTO django_ws_group_message
        (namespace, group_name, epoch, message_offset, data, exclude, created, expires)
    SELECT %(ns)s, %(group)s, log.epoch, log.last_offset, %(data)s, %(exclude)s,
           clock_timestamp(), clock_timestamp() + make_interval(secs => %(ttl)s)
    FROM log
    RETURNING epoch, message_offset
), trimmed AS (
    DELETE FROM django_ws_group_message m USING log
    WHERE m.namespace = %(ns)s AND m.group_name = %(group)s
      AND (m.epoch = log.epoch AND m.message_offset = log.last_offset - %(size)s
           OR log.last_offset = 1 AND m.epoch <> log.epoch)
)
SELECT message.epoch, message.message_offset,
       pg_notify(%(channel)s,
                 CASE WHEN %(inline)s THEN 'h' ELSE 'H' END || %(announced_exclude)s || E'\\n'
                 || message.epoch || E'\\n' || message.message_offset::text
                 || CASE WHEN %(inline)s THEN E'\\n' || %(data)s ELSE '' END)
FROM message
"""

#: Params: ns, group. The log row as it is (no lock: never waits for a writer).
SELECT_LOG = """
SELECT epoch, last_offset, expires < clock_timestamp(),
       (extract(epoch FROM clock_timestamp()) * 1000)::bigint
FROM django_ws_group_log WHERE namespace = %s AND group_name = %s
"""

#: Named params: ns, group, new_epoch, ttl. Creates the group's epoch when it has
#: none or it expired (so a position read before the first message holds).
ENSURE_LOG = """
INSERT INTO django_ws_group_log AS l (namespace, group_name, epoch, last_offset, expires)
VALUES (%(ns)s, %(group)s, %(new_epoch)s, 0,
        clock_timestamp() + make_interval(secs => %(ttl)s))
ON CONFLICT (namespace, group_name) DO UPDATE SET
    epoch = EXCLUDED.epoch, last_offset = 0, expires = EXCLUDED.expires
    WHERE l.expires < clock_timestamp()
RETURNING epoch, last_offset, false, (extract(epoch FROM clock_timestamp()) * 1000)::bigint
"""

#: Params: ns, group, epoch, offset delivered by a process. When the group is
#: still at that epoch but behind that offset (a failover to a standby that had
#: not received the last commits), drop its log row, so that the next read or
#: broadcast starts a new epoch instead of reusing offsets members have seen.
RESET_IF_BEHIND = """
DELETE FROM django_ws_group_log
WHERE namespace = %s AND group_name = %s AND epoch = %s AND last_offset < %s
"""

#: Params: ns, group, epoch, first offset. The messages from ``first`` on.
SELECT_MESSAGES = """
SELECT message_offset, data, exclude, (extract(epoch FROM created) * 1000)::bigint
FROM django_ws_group_message
WHERE namespace = %s AND group_name = %s AND epoch = %s AND message_offset >= %s
ORDER BY message_offset
"""

#: Params: ns, group, epoch, offset.
SELECT_MESSAGE = """
SELECT data, exclude FROM django_ws_group_message
WHERE namespace = %s AND group_name = %s AND epoch = %s AND message_offset = %s
"""


@dataclass(frozen=True)
class Announced:
    """A history message as its NOTIFY carries it (``data`` None: read it)."""

    exclude: frozenset[str]
    epoch: str
    offset: int
    data: str | None


def history_inline(data: str, exclude: frozenset[str]) -> bool:
    """Whether a history message fits in its NOTIFY."""
    size = len(data.encode()) + sum(len(e) + 1 for e in exclude) + HISTORY_HEADER_ROOM
    return size < NOTIFY_LIMIT


def decode_announced(payload: str) -> Announced:
    """Unpack a history NOTIFY payload; raise ``ValueError`` if malformed."""
    kind = payload[:1]
    if kind == "h":
        exclude, epoch, offset, data = payload[1:].split("\n", 3)
    elif kind == "H":
        exclude, epoch, offset = payload[1:].split("\n", 2)
        data = None
    else:
        raise ValueError(f"Unknown payload kind {kind!r}")
    excluded = frozenset(exclude.split(",")) if exclude else frozenset()
    return Announced(excluded, epoch, int(offset), data)


# Presence and sweeping ------------------------------------------------------------

#: Params: ns, group, process, members, users (JSON), ttl.
WRITE_PRESENCE = """
INSERT INTO django_ws_presence AS p (namespace, group_name, process, members, users, expires)
VALUES (%s, %s, %s, %s, %s, clock_timestamp() + make_interval(secs => %s))
ON CONFLICT (namespace, group_name, process) DO UPDATE SET
    members = EXCLUDED.members, users = EXCLUDED.users, expires = EXCLUDED.expires
"""

#: Params: ns, group, process.
DELETE_PRESENCE = """
DELETE FROM django_ws_presence WHERE namespace = %s AND group_name = %s AND process = %s
"""

#: Params: ns, group.
READ_PRESENCE = """
SELECT members, users FROM django_ws_presence
WHERE namespace = %s AND group_name = %s AND expires > clock_timestamp()
"""

#: What has expired, at most ``%s`` rows of each table per sweep.
#: now(), not clock_timestamp(): a stable bound lets the planner use the
#: ``expires`` indexes instead of scanning each table (the sweep is its own transaction).
SWEEP = """
WITH m AS (
    DELETE FROM django_ws_group_message WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM django_ws_group_message
        WHERE expires < now() LIMIT %(limit)s))
), l AS (
    DELETE FROM django_ws_group_log WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM django_ws_group_log
        WHERE expires < now() LIMIT %(limit)s))
), p AS (
    DELETE FROM django_ws_payload WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM django_ws_payload
        WHERE expires < now() LIMIT %(limit)s))
)
DELETE FROM django_ws_presence WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM django_ws_presence
    WHERE expires < now() LIMIT %(limit)s))
"""
