"""A board of cards that every open page shows live: ``@broadcasts_to`` does it all.

Any save or delete of a card, from the board's forms, the admin or a shell,
reaches every page showing its board once the transaction commits.
"""

from __future__ import annotations

from django.db import models

from django_ws.live import broadcasts_to


class Board(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


@broadcasts_to(
    lambda card: ("board", card.board), template="board/_card.html", target="cards"
)
class Card(models.Model):
    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="cards")
    text = models.CharField(max_length=200)

    class Meta:
        ordering = ("pk",)

    def __str__(self) -> str:
        return self.text
