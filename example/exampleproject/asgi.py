"""The ASGI application: HTTP to Django, WebSockets to django-ws.

``manage.py runserver`` serves it in development; in production run
``uvicorn exampleproject.asgi:application`` (or any ASGI server).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exampleproject.settings")

from django_ws import get_websocket_application

application = get_websocket_application()
