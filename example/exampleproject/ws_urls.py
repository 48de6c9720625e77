"""WebSocket routes written as a urlconf, as in the 1.0.2 README.

The chat, ticker and job sockets register themselves with ``@ws_route`` in their
app's ``ws.py``; both kinds of route are served side by side.
"""

import classic.ws
from django.urls import path

urlpatterns = [
    path("ws", classic.ws.MySocket, name="classic"),
]
