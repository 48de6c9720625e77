"""The operations store on Redis: limit counts and live-view snapshots, with TTLs.

Its own connections, made from the ``RedisBackend``'s ``LOCATION``, ``PREFIX`` and
``TIMEOUT``; every key sits in one hash slot (``{<PREFIX>:ops}``) so its scripts
run on Redis Cluster too.

A limit is a hash per user or address, ``{<PREFIX>:ops}:lim:<kind>:<value>``, with
one field per process: ``"<count>:<deadline ms>"``. Counting a new socket sums
the fields whose deadline has not passed (dropping the others) in one script,
atomically, and refuses when the sum is at the limit. Each process restates its
own counts every third of the TTL, so a process that dies stops counting within
the TTL, and a count that went astray is set right at the next refresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import redis as sync_redis
import redis.asyncio as async_redis
from redis.exceptions import NoScriptError

from ..connection_ids import process_id
from .stores import LimitKey

ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local process, ttl = ARGV[1], tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 + i])
  local total = 0
  local fields = redis.call('HGETALL', key)
  for j = 1, #fields, 2 do
    local count, deadline = string.match(fields[j + 1], '^(%d+):(%d+)$')
    if count == nil or tonumber(deadline) < now then
      redis.call('HDEL', key, fields[j])
    else
      total = total + tonumber(count)
    end
  end
  if total >= limit then return i end
end
for _, key in ipairs(KEYS) do
  local mine = redis.call('HGET', key, process)
  local count = 0
  if mine then count = tonumber(string.match(mine, '^(%d+):')) or 0 end
  redis.call('HSET', key, process, (count + 1) .. ':' .. (now + ttl))
  redis.call('PEXPIRE', key, ttl)
end
return 0
"""

RELEASE = """
for _, key in ipairs(KEYS) do
  local mine = redis.call('HGET', key, ARGV[1])
  if mine then
    local count, deadline = string.match(mine, '^(%d+):(%d+)$')
    count = (tonumber(count) or 1) - 1
    if count > 0 then
      redis.call('HSET', key, ARGV[1], count .. ':' .. deadline)
    else
      redis.call('HDEL', key, ARGV[1])
    end
  end
end
return 0
"""

REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3] .. ':' .. (now + ttl))
redis.call('PEXPIRE', KEYS[1], ttl)
return 0
"""


def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


class RedisStore:
    """``OperationsStore`` on the Redis that a ``RedisBackend`` uses."""

    def __init__(self, location: str, prefix: str, timeout: float, ttl: float) -> None:
        self.location = location
        self.tag = "{" + prefix + ":ops}"
        self.timeout = timeout
        self.ttl = ttl
        self._client: async_redis.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sync_client: sync_redis.Redis | None = None

    def limit_key(self, kind: str, value: str) -> str:
        return f"{self.tag}:lim:{kind}:{value}"

    @property
    def snapshot_index(self) -> str:
        return f"{self.tag}:processes"

    def snapshot_key(self, process: str) -> str:
        return f"{self.tag}:process:{process}"

    def _options(self) -> dict[str, Any]:
        return {"socket_timeout": self.timeout, "socket_connect_timeout": self.timeout}

    def _async(self) -> async_redis.Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = async_redis.Redis.from_url(self.location, **self._options())
            self._loop = loop
        return self._client

    def _sync(self) -> sync_redis.Redis:
        if self._sync_client is None:
            self._sync_client = sync_redis.Redis.from_url(self.location, **self._options())
        return self._sync_client

    async def _script(self, script: str, keys: list[str], args: list[Any]) -> Any:
        client = self._async()
        try:
            return await client.evalsha(_sha(script), len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(script, len(keys), *keys, *args)

    def _ttl_ms(self) -> int:
        return int(self.ttl * 1000)

    async def acquire(self, keys: Sequence[LimitKey]) -> LimitKey | None:
        names = [self.limit_key(kind, value) for kind, value, _ in keys]
        args = [process_id(), self._ttl_ms(), *(limit for _, _, limit in keys)]
        full = int(await self._script(ACQUIRE, names, args))
        return keys[full - 1] if full else None

    async def release(self, keys: Sequence[LimitKey]) -> None:
        names = [self.limit_key(kind, value) for kind, value, _ in keys]
        await self._script(RELEASE, names, [process_id()])

    async def refresh(self, counts: dict[tuple[str, str], int]) -> None:
        # One script per key, pipelined: one round trip whatever their number.
        client = self._async()
        await client.script_load(REFRESH)
        pipe = client.pipeline(transaction=False)
        for (kind, value), count in counts.items():
            if count > 0:
                key = self.limit_key(kind, value)
                pipe.evalsha(_sha(REFRESH), 1, key, process_id(), self._ttl_ms(), count)
        await pipe.execute()

    async def write_snapshot(self, snapshot: dict[str, Any]) -> None:
        pipe = self._async().pipeline(transaction=False)
        text = json.dumps(snapshot, separators=(",", ":"), default=str)
        pipe.set(self.snapshot_key(snapshot["process"]), text, px=self._ttl_ms())
        pipe.sadd(self.snapshot_index, snapshot["process"])
        pipe.pexpire(self.snapshot_index, self._ttl_ms() * 4)
        await pipe.execute()

    def read_snapshots(self) -> list[dict[str, Any]]:
        client = self._sync()
        members: Any = client.smembers(self.snapshot_index)
        processes = sorted(member.decode() for member in members)
        if not processes:
            return []
        values: Any = client.mget([self.snapshot_key(process) for process in processes])
        dead = [p for p, value in zip(processes, values) if value is None]
        if dead:
            client.srem(self.snapshot_index, *dead)
        return [json.loads(value) for value in values if value is not None]

    async def close(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            try:
                await self._client.delete(self.snapshot_key(process_id()))
                await self._client.srem(self.snapshot_index, process_id())
            finally:
                await self._client.aclose()
        self._client = None
