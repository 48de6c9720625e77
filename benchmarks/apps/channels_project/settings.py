"""Channels 4 benchmark project.

``BENCH_AUTH=1`` wraps the router in ``AuthMiddlewareStack``; ``BENCH_LAYER``
picks the channel layer: ``memory`` (InMemoryChannelLayer), ``redis``
(channels_redis RedisChannelLayer) or ``pubsub`` (RedisPubSubChannelLayer).
"""

from __future__ import annotations

import os

from bench_settings import *  # noqa: F403
from bench_settings import INSTALLED_APPS, REDIS_URL

INSTALLED_APPS = [*INSTALLED_APPS, "channels"]
ROOT_URLCONF = "channels_project.urls"
ASGI_APPLICATION = "channels_project.asgi.application"

_layer = os.environ.get("BENCH_LAYER", "memory")
if _layer == "redis":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
elif _layer == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
