"""Group history in Redis: the Lua scripts, the key names, the pub/sub payload.

A group with history keeps three keys and a channel under one hash tag,
``{<PREFIX>:h:<group>}``, so that a Redis Cluster keeps them on one shard and
the script (which SPUBLISHes there) runs on the shard that delivers:
``:e`` the epoch, ``:o`` the last offset, ``:s`` a stream of the last ``SIZE``
messages (entry id ``<offset>-0``; fields: the data, the excluded ids, the
publish time in ms), and ``:c`` the channel. Each is given the group's ``TTL``
again by every broadcast, so ``TTL`` seconds without a message lose the history
as in the memory backend. A broadcast is one script call: epoch (created if
missing), INCR, XADD with an exact MAXLEN, EXPIRE, PUBLISH.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

from .held import Held

# KEYS: epoch, offset, stream. ARGV: new epoch, ttl ms. Creates the epoch when
# missing (and drops what an older epoch left), refreshes the TTL.
_ENSURE_EPOCH = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch, 'PX', ARGV[2])
  redis.call('DEL', KEYS[2], KEYS[3])
end
"""

#: KEYS: epoch, offset, stream. ARGV: new epoch, ttl ms, size, channel, origin,
#: excluded ids, data. Returns ``{epoch, offset}``.
PUBLISH_SCRIPT = (
    _ENSURE_EPOCH
    + """
local offset = redis.call('INCR', KEYS[2])
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[3], string.format('%d-0', offset),
  'd', ARGV[7], 'x', ARGV[6], 't', string.format('%d', ms))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
redis.call('PUBLISH', ARGV[4],
  'h' .. ARGV[5] .. '\\n' .. ARGV[6] .. '\\n' .. epoch .. '\\n' ..
  string.format('%d', offset) .. '\\n' .. ARGV[7])
return {epoch, offset}
"""
)

#: ``PUBLISH_SCRIPT`` for a Redis Cluster: SPUBLISH reaches only the shard that
#: owns the channel, which is the shard running the script (same hash tag).
SPUBLISH_SCRIPT = PUBLISH_SCRIPT.replace(
    "redis.call('PUBLISH'", "redis.call('SPUBLISH'"
)

#: KEYS: epoch, offset, stream. ARGV: an epoch, the offset a process delivered
#: in it. When the group is still at that epoch but behind that offset (a
#: failover to a replica that had not received the last writes), drop its
#: history, so that the next message starts a new epoch instead of reusing
#: offsets that members have seen. Returns 1 when it dropped it.
RESET_IF_BEHIND_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1]
   and tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  return 1
end
return 0
"""

#: KEYS: epoch, offset, stream. ARGV: new epoch, ttl ms, first offset wanted
#: (0: none). Returns ``{epoch, offset, now ms, entries}``.
READ_SCRIPT = (
    _ENSURE_EPOCH
    + """
local offset = tonumber(redis.call('GET', KEYS[2]) or '0')
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
local entries = {}
local first = tonumber(ARGV[3])
if first > 0 and first <= offset then
  entries = redis.call('XRANGE', KEYS[3], string.format('%d-0', first), '+')
end
return {epoch, offset, ms, entries}
"""
)


@functools.cache
def sha(script: str) -> str:
    """Return the SHA1 that EVALSHA names ``script`` by."""
    return hashlib.sha1(script.encode()).hexdigest()


def hash_tag(prefix: str, group: str) -> str:
    """Return what every key of ``group``'s history starts with."""
    return f"{{{prefix}:h:{group}}}"


def keys(prefix: str, group: str) -> list[str]:
    """Return ``group``'s epoch, offset and stream keys."""
    tag = hash_tag(prefix, group)
    return [f"{tag}:e", f"{tag}:o", f"{tag}:s"]


def channel(prefix: str, group: str) -> bytes:
    """Return the channel of a group with history (same hash tag as its keys)."""
    return f"{hash_tag(prefix, group)}:c".encode()


@dataclass(frozen=True)
class Published:
    """A history message as the channel carries it."""

    origin: str
    exclude: frozenset[str]
    epoch: str
    offset: int
    data: str


def decode_published(payload: bytes) -> Published:
    """Unpack what ``PUBLISH_SCRIPT`` publishes; raise ``ValueError`` if malformed."""
    if payload[:1] != b"h":
        raise ValueError("not a history payload")
    origin, exclude, epoch, offset, data = payload[1:].split(b"\n", 4)
    excluded = frozenset(exclude.decode().split(",")) if exclude else frozenset()
    return Published(
        origin.decode(), excluded, epoch.decode(), int(offset), data.decode()
    )


def decode_read(reply: Any) -> Held:
    """Turn ``READ_SCRIPT``'s reply into a ``Held``."""
    epoch, offset, now_ms, raw_entries = reply
    entries = []
    for entry_id, fields in raw_entries:
        values = dict(zip(fields[::2], fields[1::2]))
        exclude = values.get(b"x", b"")
        entries.append(
            (
                int(entry_id.split(b"-", 1)[0]),
                values[b"d"].decode(),
                frozenset(exclude.decode().split(",")) if exclude else frozenset(),
                int(values[b"t"]),
            )
        )
    return Held(_text(epoch), int(offset), int(now_ms), tuple(entries))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
