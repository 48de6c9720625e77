"""What per-group LISTEN saves over one shared channel, measured on a real PostgreSQL.

``PostgresBackend`` gives each group its own NOTIFY channel and a process LISTENs
only to the groups it has members in. The other design, one channel for every
group with each process filtering, is simpler; this script measures what it
costs. ``PROCESSES`` listener sessions stand for server processes; each has
members in one group of its own; ``BROADCASTS`` broadcasts of ``PAYLOAD`` bytes
go round-robin to those groups. Counted, not timed: the notifications and bytes
each scheme sends to the listeners, and the CPU time (in clock ticks, from
``/proc/<pid>/stat``) of the PostgreSQL backends serving the listeners and the
publisher. Run it on an idle machine for the CPU figures; the counts are exact.

    python benchmarks/postgres_listen_cost.py "host=127.0.0.1 user=postgres dbname=django_ws_test"
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import psycopg

PROCESSES = int(os.environ.get("PROCESSES", "8"))
BROADCASTS = int(os.environ.get("BROADCASTS", "4000"))
PAYLOAD = int(os.environ.get("PAYLOAD", "200"))
#: More groups each process has members in (idle ones), to see what long LISTEN
#: lists cost PostgreSQL (it checks each notification against the list).
EXTRA_GROUPS = int(os.environ.get("EXTRA_GROUPS", "0"))
#: NotificationResponse framing: type byte, length, sender pid, two NULs.
FRAME_OVERHEAD = 1 + 4 + 4 + 2


def backend_ticks(pid: int) -> int:
    """Return the user + system clock ticks the server process ``pid`` has used."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


async def run(conninfo: str, shared_channel: bool) -> dict[str, Any]:
    listeners = [
        await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        for _ in range(PROCESSES)
    ]
    publisher = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    received = [0] * PROCESSES
    received_bytes = [0] * PROCESSES
    try:
        channels = [f"cost_group_{n}" for n in range(PROCESSES)]
        pids = []
        for index, listener in enumerate(listeners):
            channel = "cost_all" if shared_channel else channels[index]
            await listener.execute(f'LISTEN "{channel}"'.encode())
            if EXTRA_GROUPS and not shared_channel:
                extra = "; ".join(
                    f'LISTEN "idle_{index}_{n}"' for n in range(EXTRA_GROUPS)
                )
                await listener.execute(extra.encode())
            pids.append(listener.info.backend_pid)

            def count(notify: Any, index: int = index) -> None:
                received[index] += 1
                received_bytes[index] += (
                    len(notify.channel.encode()) + len(notify.payload.encode())
                    + FRAME_OVERHEAD
                )

            listener.add_notify_handler(count)
        server_pids = [*pids, publisher.info.backend_pid]
        before = sum(backend_ticks(pid) for pid in server_pids)
        body = "x" * PAYLOAD
        for number in range(BROADCASTS):
            group = number % PROCESSES
            channel = "cost_all" if shared_channel else channels[group]
            # One channel: the payload names the group, for the processes to filter.
            payload = f"{group}\n{body}" if shared_channel else body
            await publisher.execute("SELECT pg_notify(%s, %s)", (channel, payload))
        for listener in listeners:  # reads what is pending
            await listener.execute(b"SELECT 1")
        await asyncio.sleep(0.2)
        for listener in listeners:
            await listener.execute(b"SELECT 1")
        after = sum(backend_ticks(pid) for pid in server_pids)
    finally:
        for connection in (*listeners, publisher):
            await connection.close()
    total = sum(received)
    return {
        "scheme": "one shared channel" if shared_channel else "one channel per group",
        "notifications_delivered": total,
        "per_broadcast": round(total / BROADCASTS, 3),
        "bytes_to_listeners_per_broadcast": round(sum(received_bytes) / BROADCASTS, 1),
        "wasted_deliveries_per_broadcast": round((total - BROADCASTS) / BROADCASTS, 3),
        "server_cpu_ticks": after - before,
    }


async def main(conninfo: str) -> None:
    results = [await run(conninfo, False), await run(conninfo, True)]
    print(
        json.dumps(
            {
                "processes": PROCESSES,
                "broadcasts": BROADCASTS,
                "payload_bytes": PAYLOAD,
                "extra_groups_per_process": EXTRA_GROUPS,
                "clock_ticks_per_second": os.sysconf("SC_CLK_TCK"),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "host=127.0.0.1 user=postgres dbname=django_ws_test"))
