from django.urls import path

from . import views

urlpatterns = [path("<slug:room>/", views.room, name="chat-room")]
