"""HTTP routes of the test project: one plain view, to check HTTP still works."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path


def ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [path("http/", ok)]
