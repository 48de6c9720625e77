"""Bad input, fuzzed through a real server: every case ends in a documented outcome.

Hypothesis throws random text, random bytes, random JSON (objects or not), invalid
UTF-8, frames over ``WS_MAX_MESSAGE_SIZE`` and over uvicorn's ``--ws-max-size``,
deeply nested JSON and malformed frames at an echo handler, one connection per
case. The outcome is computed independently of the server and must match
exactly: an echo, django-ws's 1007 or 1009, or uvicorn's own 1007, 1009 or 1002.
Between cases, a bystander connection must still echo and the server must be up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tests.conftest import LiveServerFactory
from tests.e2e.safety_raw_client import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    Frame,
    RawWebSocket,
)
from tests.live_server import LiveServer

MAX_MESSAGE_SIZE = 128 * 1024  # WS_MAX_MESSAGE_SIZE: django-ws closes 1009 above it
WS_MAX_SIZE = 256 * 1024  # uvicorn --ws-max-size: uvicorn closes 1009 above it
FUZZ_SETTINGS = {
    "ROOT_WS_URLCONF": "tests.e2e.apps.safety_fuzz",
    "WS_MAX_MESSAGE_SIZE": MAX_MESSAGE_SIZE,
}


@dataclass(frozen=True)
class Case:
    """What the client sends: one or more raw frames."""

    kind: str
    frames: tuple[tuple[int, bytes, dict[str, Any]], ...]

    def __repr__(self) -> str:  # keep failing examples readable
        sizes = [(opcode, len(payload), options) for opcode, payload, options in self.frames]
        return f"Case({self.kind!r}, {sizes}, head={self.frames[0][1][:40]!r})"


def text_case(kind: str, text: str) -> Case:
    return Case(kind, ((OP_TEXT, text.encode(), {}),))


@dataclass(frozen=True)
class Outcome:
    """An echo (``opcode``, ``payload``) or a close (``close_code``, ``close_reason``)."""

    opcode: int
    payload: bytes = b""
    close_code: int | None = None
    close_reason: str = ""


def echo(opcode: int, payload: bytes) -> Outcome:
    return Outcome(opcode, payload)


def close(code: int, reason: str) -> Outcome:
    return Outcome(OP_CLOSE, close_code=code, close_reason=reason)


# What each case must end in, worked out without the server ----------------------

PROTOCOL_ERRORS = {
    "reserved bits": ((OP_TEXT, b'"x"', {"rsv": 4}), "reserved bits must be 0"),
    "unmasked": ((OP_TEXT, b'"x"', {"mask": False}), "incorrect masking"),
    "reserved opcode": ((0x3, b"x", {}), "invalid opcode"),
    "lone continuation": ((OP_CONT, b"x", {}), "unexpected continuation frame"),
    "fragmented ping": ((OP_PING, b"x", {"fin": False}), "fragmented control frame"),
    "long ping": ((OP_PING, b"x" * 126, {}), "control frame too long"),
    "short close": ((OP_CLOSE, b"\x03", {}), "close frame too short"),
}


def expected(case: Case) -> Outcome:
    if case.kind in PROTOCOL_ERRORS:
        return close(1002, PROTOCOL_ERRORS[case.kind][1])  # uvicorn's
    payload = b"".join(frame[1] for frame in case.frames)
    opcode = case.frames[0][0]
    if len(payload) > WS_MAX_SIZE:  # uvicorn's, before django-ws sees anything
        return close(1009, f"frame with {len(payload)} bytes exceeds limit of {WS_MAX_SIZE} bytes")
    if opcode == OP_TEXT:
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            return close(1007, "")  # uvicorn's
    if len(payload) > MAX_MESSAGE_SIZE:
        return close(1009, "Message too big")
    if opcode == OP_BINARY:
        return echo(OP_BINARY, payload)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return close(1007, "Invalid message")
    reply = json.dumps({"echo": value}, separators=(",", ":"), ensure_ascii=False)
    return echo(OP_TEXT, reply.encode())


# The cases ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
invalid_utf8 = st.builds(
    lambda head, bad, tail: head.encode() + bad + tail.encode(),
    st.text(max_size=20),
    st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80"]),
    st.text(max_size=20),
)
cases = st.one_of(
    st.text(max_size=200).map(lambda text: text_case("random text", text)),
    json_values.map(lambda value: text_case("json", json.dumps(value))),
    st.binary(max_size=200).map(lambda data: Case("random bytes", ((OP_BINARY, data, {}),))),
    invalid_utf8.map(lambda data: Case("invalid utf-8", ((OP_TEXT, data, {}),))),
    invalid_utf8.map(
        lambda data: Case(
            "invalid utf-8, fragmented",
            ((OP_TEXT, data[:2], {"fin": False}), (OP_CONT, data[2:], {})),
        )
    ),
    st.builds(
        lambda size, binary: Case(
            "huge frame", ((OP_BINARY if binary else OP_TEXT, b"7" * size, {}),)
        ),
        st.integers(MAX_MESSAGE_SIZE - 2, WS_MAX_SIZE + 2),
        st.booleans(),
    ),
    st.builds(
        lambda depth, closed: text_case("nested json", "[" * depth + ("]" * depth if closed else "")),
        st.integers(1, 200) | st.sampled_from([50_000, 100_000]),
        st.booleans(),
    ),
    st.sampled_from(sorted(PROTOCOL_ERRORS)).map(
        lambda kind: Case(kind, (PROTOCOL_ERRORS[kind][0],))
    ),
)


# The wire -----------------------------------------------------------------------


def throw(port: int, case: Case) -> Outcome:
    """Send ``case`` on a new connection; return the first data frame or the close."""
    ws = RawWebSocket.connect(port, "/safety/fuzz")
    try:
        for opcode, payload, options in case.frames:
            ws.send_frame(opcode, payload, **options)
        frame: Frame = ws.recv_frame(timeout=10)
        if frame.opcode == OP_CLOSE:
            return close(frame.close_code or 0, frame.close_reason)
        return echo(frame.opcode, frame.payload)
    finally:
        ws.close()


@pytest.fixture
def fuzz_server(live_server_factory: LiveServerFactory) -> LiveServer:
    return live_server_factory(FUZZ_SETTINGS, uvicorn_args=["--ws-max-size", str(WS_MAX_SIZE)])


@pytest.fixture
def bystander(fuzz_server: LiveServer) -> Iterator[RawWebSocket]:
    ws = RawWebSocket.connect(fuzz_server.port, "/safety/fuzz")
    yield ws
    ws.close()


def assert_bystander_echoes(ws: RawWebSocket, number: int) -> None:
    ws.send_text(json.dumps(number))
    frame = ws.recv_frame(timeout=10)
    assert (frame.opcode, frame.payload) == (OP_TEXT, b'{"echo":%d}' % number)


_examples = iter(range(1_000_000))


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one server and bystander for all cases
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(case=cases)
@example(case=text_case("nested json", "[" * 100_000))
@example(case=text_case("json", "42"))
@example(case=Case("invalid utf-8", ((OP_TEXT, b"\xff\xfe", {}),)))
@example(case=Case("huge frame", ((OP_TEXT, b"7" * (MAX_MESSAGE_SIZE + 1), {}),)))
@example(case=Case("huge frame", ((OP_BINARY, b"7" * (WS_MAX_SIZE + 1), {}),)))
@example(case=Case("unmasked", (PROTOCOL_ERRORS["unmasked"][0],)))
def test_every_bad_input_ends_in_a_documented_outcome_and_the_server_stays_up(
    fuzz_server: LiveServer, bystander: RawWebSocket, case: Case
) -> None:
    event(case.kind)
    assert throw(fuzz_server.port, case) == expected(case)
    assert fuzz_server.running
    assert_bystander_echoes(bystander, next(_examples))
