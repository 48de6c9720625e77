"""The ``MySocket`` of the 1.0.2 README, routed by ``exampleproject/ws_urls.py``.

Nothing new here on purpose: a handler class, its three hooks, an un-awaited
``self.send`` (which sends, unlike in 1.0.2) and ``start_ping``.
"""

import logging

from django_ws import WebSocketHandler

logger = logging.getLogger("example")


class MySocket(WebSocketHandler):
    async def on_open(self):
        self.count = 0
        self.start_ping()  # {"ping": <time>} every 59 s keeps proxies from closing it
        self.send({"hello": str(self.request.user)})

    async def on_message(self, data):
        self.count += 1
        # send json data
        self.send({"reply": "sending data back", "you_sent": data, "count": self.count})

    async def on_close(self):
        logger.info("MySocket closed after %d messages", self.count)
