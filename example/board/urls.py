from django.urls import path

from . import views

urlpatterns = [
    path("", views.board_page, name="board"),
    path("turbo/", views.board_page, {"flavor": "turbo"}, name="board-turbo"),
    path("cards/", views.add_card, name="board-card-add"),
    path("cards/<int:card_id>/", views.edit_card, name="board-card-edit"),
]
