"""An HTTP view that broadcasts, for the broadcast end-to-end tests (``ROOT_URLCONF``).

``POST /broadcast/<group>`` with a text body sends ``{"text": body}`` to the
group with ``broadcast_sync``, as a project's ordinary sync view would.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

import django_ws


@csrf_exempt
@require_POST
def broadcast_view(request: HttpRequest, group: str) -> HttpResponse:
    try:
        django_ws.broadcast_sync(group, {"text": request.body.decode()})
    except django_ws.BroadcastError:
        return HttpResponse("broadcast failed", status=503)
    return HttpResponse("sent")


urlpatterns = [path("broadcast/<str:group>", broadcast_view)]
