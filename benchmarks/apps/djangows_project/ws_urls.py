from django.urls import path

from djangows_project.handlers import EchoSocket, RoomSocket, TriggerSocket

# The decorator-form routes (dsl/...) are registered by djangows_project/ws.py.
urlpatterns = [
    path("echo", EchoSocket),
    path("room", RoomSocket),
    path("trigger", TriggerSocket),
]
