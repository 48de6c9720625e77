"""``ws_since`` parsing and the history frames (``broadcast/protocol.py``)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from django_ws.broadcast.protocol import (
    MAX_SINCE_GROUPS,
    envelope,
    parse_since,
    recovery_event,
)


def query(value: object, *, prefix: str = "") -> bytes:
    text = value if isinstance(value, str) else json.dumps(value)
    return f"{prefix}ws_since={quote(text)}".encode()


def test_positions_are_read_from_url_encoded_json() -> None:
    assert parse_since(query({"room": ["e1", 3], "other": ["e2", 0]})) == {
        "room": ("e1", 3),
        "other": ("e2", 0),
    }


def test_other_query_parameters_are_kept_apart() -> None:
    assert parse_since(query({"room": ["e1", 3]}, prefix="token=abc&")) == {
        "room": ("e1", 3)
    }


def test_no_ws_since_is_no_position() -> None:
    assert parse_since(b"") == {}
    assert parse_since(b"token=abc") == {}


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "[1, 2]",
        '"room"',
        "null",
        "[" * 50_000 + "]" * 50_000,  # nesting past the recursion limit
        "1" * 10_000,  # past Python's int digits limit
        "%ZZ",
        "\udcff",
    ],
    ids=["text", "list", "string", "null", "deep", "huge-int", "bad-escape", "surrogate"],
)
def test_a_value_that_is_not_a_json_object_is_ignored(value: str) -> None:
    assert parse_since(b"ws_since=" + value.encode("utf-8", "surrogatepass")) == {}


@pytest.mark.parametrize(
    "position",
    [
        ["e1", -1],
        ["e1", 1.5],
        ["e1", True],
        ["e1", "3"],
        ["e1", 2**63],
        [1, 3],
        ["", 3],
        ["e" * 2000, 3],
        ["e1"],
        ["e1", 3, 4],
        {"epoch": "e1", "offset": 3},
        None,
    ],
)
def test_a_malformed_position_is_ignored_and_the_others_kept(position: object) -> None:
    offered = {"bad": position, "room": ["e1", 3]}
    assert parse_since(query(offered)) == {"room": ("e1", 3)}


def test_an_overlong_group_name_is_ignored() -> None:
    assert parse_since(query({"g" * 2000: ["e1", 1]})) == {}


def test_a_value_over_64_kib_is_ignored_whole() -> None:
    offered = {"room": ["e1", 3], "padding": ["x" * 70_000, 1]}
    assert parse_since(query(offered)) == {}


def test_only_the_first_groups_are_considered() -> None:
    offered = {f"g{index}": ["e", index] for index in range(1_000)}
    positions = parse_since(b"ws_since=" + json.dumps(offered).encode())
    assert len(positions) == MAX_SINCE_GROUPS
    assert positions["g0"] == ("e", 0)
    assert f"g{MAX_SINCE_GROUPS}" not in positions


def test_ten_thousand_groups_are_over_the_size_limit_and_ignored() -> None:
    offered = {f"g{index}": ["e", index] for index in range(10_000)}
    assert parse_since(b"ws_since=" + json.dumps(offered).encode()) == {}


def test_the_envelope_wraps_the_encoded_data() -> None:
    event = envelope('"room"', "e1", 7, '{"text": "hi"}')
    assert event == {
        "type": "websocket.send",
        "text": '{"group":"room","epoch":"e1","offset":7,"data":{"text": "hi"}}',
    }
    assert json.loads(event["text"])["data"] == {"text": "hi"}


def test_the_recovery_frame() -> None:
    event = recovery_event("room", True, "e1", 4, 2)
    assert json.loads(event["text"]) == {
        "group": "room",
        "recovered": True,
        "epoch": "e1",
        "offset": 4,
        "missed": 2,
    }
