"""Codecs turn text frames into Python values and values into frames.

A handler picks one with its ``codec`` class attribute. The codec is built once and
shared by every connection of the class, so nothing is allocated per message beyond
the value itself.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from django.core.serializers.json import DjangoJSONEncoder

from .exceptions import MessageDecodeError


class Codec(Protocol):
    """What a handler's ``codec`` must provide."""

    def decode(self, text: str) -> Any:
        """Return the value of a text frame, or raise ``MessageDecodeError``."""

    def encode(self, data: Any) -> str | bytes:
        """Return the frame for ``data``: ``str`` for text, ``bytes`` for binary."""


class JSONCodec:
    """JSON with Django's encoder: datetimes, Decimals, UUIDs and lazy strings work."""

    def __init__(self, encoder: type[json.JSONEncoder] = DjangoJSONEncoder) -> None:
        self._encode = encoder(separators=(",", ":"), ensure_ascii=False).encode
        self._decode = json.JSONDecoder().decode

    def decode(self, text: str) -> Any:
        try:
            return self._decode(text)
        except (ValueError, RecursionError) as error:
            raise MessageDecodeError(f"Invalid JSON: {error}") from None

    def encode(self, data: Any) -> str | bytes:
        return self._encode(data)


class TextCodec:
    """Text frames arrive as ``str``; ``send`` takes ``str`` (or ``bytes``) as is."""

    def decode(self, text: str) -> Any:
        return text

    def encode(self, data: Any) -> str | bytes:
        if isinstance(data, (str, bytes)):
            return data
        raise TypeError(f"TextCodec sends str or bytes, not {type(data).__name__}")
