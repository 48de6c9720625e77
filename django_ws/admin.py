"""The django-ws pages of the Django admin: the live view of sockets (staff only).

django-ws has no models, so its pages are URLs added to the default admin site,
wrapped in ``admin_view`` (staff login, CSRF), and linked from the admin index.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import URLPattern, URLResolver, path, reverse

from .operations.admin_views import close_view, live_view

_URL = list[URLPattern | URLResolver]


def _with_live_view(get_urls: Callable[[], _URL]) -> Callable[[], _URL]:
    def urls() -> _URL:
        site = admin.site
        return [
            path("django_ws/live/", site.admin_view(live_view), name="django_ws_live"),
            path(
                "django_ws/live/close/",
                site.admin_view(close_view),
                name="django_ws_live_close",
            ),
        ] + get_urls()

    return urls


def _with_index_entry(
    get_app_list: Callable[..., list[dict[str, Any]]],
) -> Callable[..., list[dict[str, Any]]]:
    def app_list(request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = get_app_list(request, app_label)
        if app_label in (None, "django_ws") and request.user.is_staff:
            url = reverse("admin:django_ws_live")
            apps.append(
                {
                    "name": "django-ws",
                    "app_label": "django_ws",
                    "app_url": url,
                    "has_module_perms": True,
                    "models": [
                        {
                            "name": "Live sockets",
                            "object_name": "LiveSockets",
                            "admin_url": url,
                            "view_only": True,
                            "perms": {"view": True},
                        }
                    ],
                }
            )
        return apps

    return app_list


if not getattr(admin.site, "_django_ws_live_view", False):
    admin.site.get_urls = _with_live_view(admin.site.get_urls)  # type: ignore[method-assign]
    site = admin.site
    site.get_app_list = _with_index_entry(site.get_app_list)  # type: ignore[method-assign]
    admin.site._django_ws_live_view = True  # type: ignore[attr-defined]
