"""Stream names: what a page listens to, signed so that only the server picks it.

A stream is named by parts, as turbo-rails names its streams: strings as they
are, a model instance as ``app_label.model:pk``, joined with ``:``. The name is
also the broadcast group. It travels to the browser signed with Django's
``Signer`` (``SECRET_KEY``, salted for this use only), so a page can listen to
the streams the server rendered for it and to no other: a forged or altered
token is refused before the socket is accepted.
"""

from __future__ import annotations

from typing import Any

from django.core import signing
from django.db.models import Model

#: The signing salt: a token made for anything else never verifies here.
SALT = "django_ws.live.stream"


class InvalidStreamToken(ValueError):
    """A stream token that is malformed, forged or altered."""


def _part(part: Any) -> str:
    if isinstance(part, Model):
        if part.pk is None:
            raise ValueError(
                f"{part!r} has no primary key yet: save it before naming a stream "
                "after it."
            )
        opts = part._meta
        return f"{opts.app_label}.{opts.model_name}:{part.pk}"
    if isinstance(part, str) and part:
        return part
    if isinstance(part, int) and not isinstance(part, bool):
        return str(part)
    raise TypeError(
        "A stream name part is a non-empty str, an int or a saved model instance, "
        f"got {part!r}"
    )


def stream_name(*parts: Any) -> str:
    """Return the stream (and group) name for ``parts``: ``"board:boards.board:1"``.

    A tuple or list among ``parts`` is flattened, so ``stream_name(("board", b))``
    and ``stream_name("board", b)`` agree.
    """
    flat: list[Any] = []
    for part in parts:
        if isinstance(part, (tuple, list)):
            flat.extend(part)
        else:
            flat.append(part)
    if not flat:
        raise TypeError("A stream is named by at least one part, got none")
    return ":".join(_part(part) for part in flat)


def sign_stream(name: str) -> str:
    """Return ``name`` signed, URL-path safe (``[A-Za-z0-9_:-]``)."""
    return signing.Signer(salt=SALT).sign_object(name)


def verify_stream(token: str) -> str:
    """Return the stream name inside ``token``, or raise ``InvalidStreamToken``."""
    try:
        name = signing.Signer(salt=SALT).unsign_object(token)
    except (signing.BadSignature, ValueError, UnicodeError) as error:
        raise InvalidStreamToken("invalid stream token") from error
    if not isinstance(name, str) or not name:
        raise InvalidStreamToken("invalid stream token")
    return name


def dom_id(obj: Model, prefix: str | None = None) -> str:
    """Return the element id for ``obj``: ``card_5`` (``new_card`` before it is saved).

    Fragments of ``broadcasts_to`` models use it as their root element's id, so
    that updates replace and deletes remove the right element.
    """
    if not isinstance(obj, Model):
        raise TypeError(f"dom_id takes a model instance, got {obj!r}")
    model_name = obj._meta.model_name
    name = f"{model_name}_{obj.pk}" if obj.pk is not None else f"new_{model_name}"
    return f"{prefix}_{name}" if prefix else name
