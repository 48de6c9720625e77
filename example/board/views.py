"""The live board's pages: plain Django views and forms, no JavaScript of ours.

The same board has an htmx page and a Turbo page; both post ordinary forms and
get redirected back. ``Card``'s ``@broadcasts_to`` updates every open page.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from .models import Board, Card

FLAVORS = ("htmx", "turbo")


def see_other(url: str) -> HttpResponseRedirect:
    """Redirect after a POST with 303, which Turbo expects and every browser follows."""
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def the_board() -> Board:
    board = Board.objects.order_by("pk").first()
    return board or Board.objects.create(name="Our board")


def board_page(request: HttpRequest, flavor: str = "htmx") -> HttpResponse:
    board = the_board()
    return render(
        request,
        f"board/board_{flavor}.html",
        {
            "board": board,
            "cards": board.cards.all(),
            "flavor": flavor,
            "assets_missing": not settings.LIVE_ASSETS_INSTALLED,
        },
    )


def back_to(flavor: str) -> str:
    return reverse("board-turbo" if flavor == "turbo" else "board")


@require_POST
def add_card(request: HttpRequest) -> HttpResponse:
    text = request.POST.get("text", "").strip()[:200]
    if text:
        Card.objects.create(board=the_board(), text=text)
    return see_other(back_to(request.POST.get("flavor", "")))


def edit_card(request: HttpRequest, card_id: int) -> HttpResponse:
    card = get_object_or_404(Card, pk=card_id)
    flavor = request.GET.get("flavor") or request.POST.get("flavor") or "htmx"
    if request.method == "POST":
        if "delete" in request.POST:
            card.delete()
        else:
            text = request.POST.get("text", "").strip()[:200]
            if text:
                card.text = text
                card.save()
        return see_other(back_to(flavor))
    return render(request, "board/edit.html", {"card": card, "flavor": flavor})
