"""HTTP routes: the pages, and Django's login and logout views."""

from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("chat/", include("chat.urls")),
    path("ticker/", include("ticker.urls")),
    path("jobs/", include("jobs.urls")),
    path("classic/", include("classic.urls")),
    path("board/", include("board.urls")),
    path("admin/", admin.site.urls),
]
