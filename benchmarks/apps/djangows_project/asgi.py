import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangows_project.settings")

from django_ws import get_websocket_application  # noqa: E402

application = get_websocket_application()
