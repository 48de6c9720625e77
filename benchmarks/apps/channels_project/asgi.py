from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "channels_project.settings")

from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.urls import path  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from channels_project.consumers import Echo, Room, Trigger  # noqa: E402

websocket_app = URLRouter(
    [
        path("echo", Echo.as_asgi()),
        path("room", Room.as_asgi()),
        path("trigger", Trigger.as_asgi()),
    ]
)
if settings.BENCH_AUTH:
    websocket_app = AuthMiddlewareStack(websocket_app)

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_app})
