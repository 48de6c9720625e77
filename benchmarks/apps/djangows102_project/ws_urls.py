from django.urls import path

from djangows102_project.handlers import EchoSocket, RoomSocket, TriggerSocket

urlpatterns = [
    path("echo", EchoSocket),
    path("room", RoomSocket),
    path("trigger", TriggerSocket),
]
