"""The history wire protocol: message envelopes, recovery frames, ``ws_since``.

See ``docs/protocol.md``. A client offers its last positions in the handshake's
``ws_since`` query parameter; whatever it sends, parsing costs a bounded amount
and never fails: what cannot be used is ignored.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

#: The query parameter that carries a reconnecting client's positions.
SINCE_PARAMETER = b"ws_since"
#: A ``ws_since`` longer than this (URL-encoded) is ignored as a whole.
MAX_SINCE_BYTES = 64 * 1024
#: At most this many groups of one ``ws_since`` are considered.
MAX_SINCE_GROUPS = 256
#: Group names and epochs longer than this are ignored.
MAX_NAME_LENGTH = 1024
#: Offsets at or past this are ignored (no log gets there).
MAX_OFFSET = 2**63

Position = tuple[str, int]


def group_json(group: str) -> str:
    """Return ``group`` as the envelope carries it (encoded once per broadcast)."""
    return json.dumps(group, separators=(",", ":"))


def envelope(group_json: str, epoch: str, offset: int, data_text: str) -> dict[str, Any]:
    """Return the send event of a history message; ``data_text`` is encoded JSON."""
    text = (
        f'{{"group":{group_json},"epoch":{json.dumps(epoch)},'
        f'"offset":{offset},"data":{data_text}}}'
    )
    return {"type": "websocket.send", "text": text}


def recovery_event(
    group: str, recovered: bool, epoch: str, offset: int, missed: int
) -> dict[str, Any]:
    """Return the send event that tells a joining member what it recovered."""
    frame = {
        "group": group,
        "recovered": recovered,
        "epoch": epoch,
        "offset": offset,
        "missed": missed,
    }
    return {"type": "websocket.send", "text": json.dumps(frame, separators=(",", ":"))}


def _since_value(query_string: bytes) -> bytes | None:
    for part in query_string.split(b"&"):
        name, _, value = part.partition(b"=")
        if name == SINCE_PARAMETER:
            return value
    return None


def parse_since(query_string: bytes) -> dict[str, Position]:
    """Return the usable positions offered in ``query_string``'s ``ws_since``.

    Never raises: a value that is too long or not a JSON object gives ``{}``;
    an entry that is not ``"group": ["epoch", offset]`` with a non-negative int
    offset is left out; past ``MAX_SINCE_GROUPS`` entries the rest are ignored.
    """
    if len(query_string) > 8 * MAX_SINCE_BYTES:  # bounded split
        return {}
    raw = _since_value(query_string)
    if raw is None or len(raw) > MAX_SINCE_BYTES:
        return {}
    try:
        offered = json.loads(unquote_plus(raw.decode("latin-1"), errors="strict"))
    except (ValueError, RecursionError, UnicodeDecodeError):
        return {}
    if not isinstance(offered, dict):
        return {}
    positions: dict[str, Position] = {}
    for count, (group, position) in enumerate(offered.items()):
        if count >= MAX_SINCE_GROUPS:
            break
        if (
            isinstance(group, str)
            and 0 < len(group) <= MAX_NAME_LENGTH
            and isinstance(position, list)
            and len(position) == 2
            and isinstance(position[0], str)
            and 0 < len(position[0]) <= MAX_NAME_LENGTH
            and type(position[1]) is int
            and 0 <= position[1] < MAX_OFFSET
        ):
            positions[group] = (position[0], position[1])
    return positions
