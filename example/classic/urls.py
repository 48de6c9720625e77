from django.urls import path

from . import views

urlpatterns = [path("", views.classic, name="classic-page")]
