"""HTTP views that broadcast inside a transaction, for the PostgreSQL end-to-end tests.

``POST /tx/<group>/commit`` and ``POST /tx/<group>/rollback`` send the body as
``{"text": body}`` with ``broadcast_sync`` inside ``transaction.atomic()`` on the
``postgres`` alias, as a project's view that saves a row would; the second then
rolls the transaction back. With ``PostgresBackend`` the NOTIFY belongs to the
transaction: sent at commit, never after a rollback.
"""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

import django_ws


class Rollback(Exception):
    """Raised inside ``atomic`` to roll it back."""


@csrf_exempt
@require_POST
def in_transaction(request: HttpRequest, group: str, outcome: str) -> HttpResponse:
    try:
        with transaction.atomic(using="postgres"):
            django_ws.broadcast_sync(group, {"text": request.body.decode()})
            if outcome == "rollback":
                raise Rollback
    except Rollback:
        return HttpResponse("rolled back")
    except django_ws.BroadcastError:
        return HttpResponse("broadcast failed", status=503)
    return HttpResponse("committed")


urlpatterns = [
    path("tx/<str:group>/<str:outcome>", in_transaction),
    path("", include("tests.e2e.apps.broadcast_http")),
]
