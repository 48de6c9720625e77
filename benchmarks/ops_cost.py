"""Instructions a connection and a message cost, through the in-process test client.

Run under callgrind twice with different counts; the difference divided by the
difference in counts is the marginal cost, free of start-up (see
``benchmarks/ops_cost.sh``, which compares a checkout before the operations
features with this one, metrics off and on)::

    python benchmarks/ops_cost.py CONNECTIONS MESSAGES_PER_CONNECTION
"""

from __future__ import annotations

import asyncio
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from typing import Any  # noqa: E402

from django_ws import WebSocketHandler  # noqa: E402
from tests.core_support import client  # noqa: E402


class Echo(WebSocketHandler):
    async def on_message(self, data: Any) -> Any:
        return data


async def run(connections: int, messages: int) -> None:
    app = client(Echo)
    for _ in range(connections):
        async with app.connect("/ws") as ws:
            for _ in range(messages):
                await ws.send_text('"x"')
                await ws.receive_text()


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]), int(sys.argv[2])))
