"""Codecs turn text frames into Python values and values into frames.

A handler picks one with its ``codec`` class attribute. The codec is built once and
shared by every connection of the class, so nothing is allocated per message beyond
the value itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
    """JSON with Django's encoder: datetimes, Decimals, UUIDs and lazy strings work.

    Both directions are on every message's path, so each takes one C call where
    the standard library's ``loads``/``dumps`` go through three Python ones. The
    result is the same: whatever the fast path does not settle (whitespace around
    a frame, an error to report, an encoder that overrides ``encode``) goes the
    standard way.
    """

    def __init__(self, encoder: type[json.JSONEncoder] = DjangoJSONEncoder) -> None:
        self._encoder = encoder(separators=(",", ":"), ensure_ascii=False)
        self._encode = self._encoder.encode
        decoder = json.JSONDecoder()
        self._decode = decoder.decode
        # The C scanner that decode() itself calls (not in typeshed).
        self._scan: Callable[[str, int], tuple[Any, int]] = decoder.scan_once  # type: ignore[attr-defined]
        self._c_encoder_args = _c_encoder_args(self._encoder)

    def decode(self, text: str) -> Any:
        try:
            value, end = self._scan(text, 0)
            if end == len(text):
                return value
        except Exception:  # StopIteration, ValueError, RecursionError: said below
            pass
        try:
            return self._decode(text)
        except (ValueError, RecursionError) as error:
            raise MessageDecodeError(f"Invalid JSON: {error}") from None

    def encode(self, data: Any) -> str | bytes:
        args = self._c_encoder_args
        if args is None:
            return self._encode(data)
        # What JSONEncoder.encode does, minus its Python frames: a fresh markers
        # dict per call keeps the circular-reference check (and thread safety).
        return "".join(_c_make_encoder({}, *args)(data, 0))


def _c_encoder_args(encoder: json.JSONEncoder) -> tuple[Any, ...] | None:
    """The arguments for the C encoder that ``encoder.encode`` would build, or ``None``.

    ``None`` (the standard path) when the C encoder is missing, when ``encoder``
    overrides ``encode``/``iterencode`` or needs the pure-Python encoder (indent,
    no circular check), or when a probe disagrees with ``encoder.encode``.
    """
    cls = type(encoder)
    if (
        _c_make_encoder is None
        or cls.encode is not json.JSONEncoder.encode
        or cls.iterencode is not json.JSONEncoder.iterencode
        or encoder.indent is not None
        or not encoder.check_circular
    ):
        return None
    args = (
        encoder.default,
        json.encoder.encode_basestring_ascii if encoder.ensure_ascii else json.encoder.encode_basestring,
        None,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )
    probe = {"a": [1, 2.5, None, True, "é\n"], "b": {"c": -1e300}}
    try:
        if "".join(_c_make_encoder({}, *args)(probe, 0)) == encoder.encode(probe):
            return args
    except Exception:  # a C encoder with another signature (a future Python)
        pass
    return None


_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)


class TextCodec:
    """Text frames arrive as ``str``; ``send`` takes ``str`` (or ``bytes``) as is."""

    def decode(self, text: str) -> Any:
        return text

    def encode(self, data: Any) -> str | bytes:
        if isinstance(data, (str, bytes)):
            return data
        raise TypeError(f"TextCodec sends str or bytes, not {type(data).__name__}")
