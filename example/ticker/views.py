"""The ticker page: anyone may watch."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

import django_ws

SYMBOLS = ("ACME", "GLOBEX", "INITECH")


def ticker(request: HttpRequest) -> HttpResponse:
    symbol = request.GET.get("symbol", SYMBOLS[0]).upper()
    if symbol not in SYMBOLS:
        symbol = SYMBOLS[0]
    return render(
        request,
        "ticker/ticker.html",
        {
            "symbol": symbol,
            "symbols": SYMBOLS,
            "socket_path": django_ws.reverse("ticker", kwargs={"symbol": symbol}),
        },
    )
