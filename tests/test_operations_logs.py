"""Log records that can be joined: connection id, route and user id on every record."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from django_ws import WebSocketHandler
from django_ws.operations.log_context import ConnectionLogFilter, install
from django_ws.operations.routes import route_label
from tests.core_support import client


@pytest.fixture(autouse=True)
def log_filter() -> None:
    install()


class Failing(WebSocketHandler):
    async def on_open(self) -> None:
        logging.getLogger("django_ws").info("opened here")

    async def on_message(self, data: Any) -> Any:
        raise ValueError("boom")


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "django_ws"]


async def test_every_record_of_a_connection_carries_its_id_route_and_user(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="django_ws")
    async with client(Failing).connect("/ws") as ws:
        await ws.send_json("hi")
        assert await ws.receive_close() == 1011
    found = records(caplog)
    assert [r.getMessage() for r in found][:2] == ["opened here", "Error in <Failing '/ws'>"]
    ids = {r.connection_id for r in found}  # type: ignore[attr-defined]
    assert len(ids) == 1 and None not in ids
    assert {r.route for r in found} == {route_label(Failing)}  # type: ignore[attr-defined]
    assert {r.user_id for r in found} == {None}  # type: ignore[attr-defined]


async def test_an_authenticated_user_is_named_by_pk(caplog: pytest.LogCaptureFixture) -> None:
    class User:
        pk = 42
        is_authenticated = True

    class Named(Failing):
        async def on_open(self) -> None:
            self.request.user = User()  # what AuthMiddleware sets
            await super().on_open()

    caplog.set_level(logging.INFO, logger="django_ws")
    async with client(Named).connect("/ws") as ws:
        await ws.send_json("hi")
        assert await ws.receive_close() == 1011
    assert {r.user_id for r in records(caplog)} == {42}  # type: ignore[attr-defined]


def test_a_record_outside_any_connection_has_the_fields_set_to_none() -> None:
    record = logging.LogRecord("django_ws", logging.INFO, __file__, 1, "process", (), None)
    assert ConnectionLogFilter().filter(record)
    assert (record.connection_id, record.route, record.user_id) == (None, None, None)  # type: ignore[attr-defined]


def test_fields_given_in_extra_are_kept() -> None:
    record = logging.LogRecord("django_ws", logging.INFO, __file__, 1, "x", (), None)
    record.connection_id, record.route, record.user_id = "c", "/r/", 7
    ConnectionLogFilter().filter(record)
    assert (record.connection_id, record.route, record.user_id) == ("c", "/r/", 7)  # type: ignore[attr-defined]

