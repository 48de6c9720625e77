"""The page of the classic socket."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

import django_ws


def classic(request: HttpRequest) -> HttpResponse:
    return render(request, "classic/classic.html", {"socket_path": django_ws.reverse("classic")})
