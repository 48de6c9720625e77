"""The client's address for ``WS_MAX_CONNECTIONS_PER_IP``: the socket's, or a proxy's header.

Behind a reverse proxy every socket comes from the proxy's address. With
``WS_CLIENT_IP_HEADER`` set (opt-in: only when every request passes through a
proxy that sets that header, or a client could claim any address) the address
is the header's last entry: the one the trusted proxy itself added to
``X-Forwarded-For``, or the whole value of ``X-Real-IP``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def client_address(scope: Mapping[str, Any], meta_key: str | None) -> str | None:
    """Return the client's address for ``scope``, or ``None`` if the server gave none."""
    if meta_key is not None:
        wanted = meta_key[len("HTTP_"):].lower().replace("_", "-").encode("latin-1")
        found = None
        for name, value in scope.get("headers", ()):
            if name == wanted:
                found = value  # of several lines, the last is the nearest proxy's
        if found is not None:
            last: str = found.decode("latin-1").rsplit(",", 1)[-1].strip()
            if last:
                return last
    client = scope.get("client")
    return str(client[0]) if client else None
