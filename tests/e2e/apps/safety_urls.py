"""HTTP routes for the safety end-to-end tests (``ROOT_URLCONF``).

``login/`` logs a user in with Django's ``authenticate`` and ``login`` (a POST of
``username`` and ``password``; the test settings have no CSRF middleware), and
``ws-ticket/`` is django-ws's own ticket view.
"""

from __future__ import annotations

from django.contrib.auth import authenticate, login
from django.http import HttpRequest, HttpResponse
from django.urls import path

from django_ws.tickets import ticket_view


def login_view(request: HttpRequest) -> HttpResponse:
    user = authenticate(
        request,
        username=request.POST.get("username"),
        password=request.POST.get("password"),
    )
    if user is None:
        return HttpResponse("bad credentials", status=401)
    login(request, user)
    return HttpResponse("logged in")


urlpatterns = [
    path("login/", login_view),
    path("ws-ticket/", ticket_view),
]
