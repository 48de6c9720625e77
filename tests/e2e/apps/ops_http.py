"""HTTP routes for the operations end-to-end tests: login, metrics, the admin."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from django_ws.operations.metrics import metrics_view
from tests.e2e.apps.safety_urls import login_view

urlpatterns = [
    path("login/", csrf_exempt(login_view)),
    path("metrics/", metrics_view),
    path("admin/", admin.site.urls),
]
