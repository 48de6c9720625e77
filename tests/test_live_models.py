"""``@broadcasts_to``: a model's saves and deletes reach the stream after commit.

The model is a proxy of ``auth.Group`` declared here, so that its signals fire
for this module's saves only. Absence is proven without a clock, as in
``test_broadcast_on_commit``: a marker broadcast after the transaction must be
the page's next frame.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from django_ws.broadcast import get_backend
from django_ws.live import broadcast_fragment_sync, broadcasts_to, sign_stream
from django_ws.testing import WebSocketTestConnection, WebSocketTestClient

transactional = pytest.mark.django_db(transaction=True)


@broadcasts_to(lambda group: "teams", template="live/group.html", target="teams")
class Team(Group):
    class Meta:
        proxy = True
        app_label = "auth"


class Rollback(Exception):
    """Raised inside ``atomic`` to roll it back."""


@pytest.fixture(autouse=True)
def live_settings(settings: Any) -> None:
    settings.WS_BROADCAST = {"BACKEND": "django_ws.broadcast.MemoryBackend"}
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [Path(__file__).parent / "live_templates"],
        }
    ]


@pytest.fixture
async def page() -> AsyncIterator[WebSocketTestConnection]:
    path = f"/ws/django-ws/stream/turbo/{sign_stream('teams')}"
    async with WebSocketTestClient().connect(path) as ws:
        yield ws
    assert get_backend().member_count() == 0


def then_mark(function: Callable[[], Any]) -> Any:
    def run() -> None:
        function()
        broadcast_fragment_sync("teams", "update", target="mark", html="marker")

    return sync_to_async(run)()


MARKER = '<turbo-stream action="update" target="mark"><template>marker</template></turbo-stream>'


@transactional
async def test_create_appends_update_replaces_delete_removes(
    page: WebSocketTestConnection,
) -> None:
    team = await sync_to_async(Team.objects.create)(name="<Blue>")
    assert await page.receive_text() == (
        '<turbo-stream action="append" target="teams"><template>'
        f'<li id="team_{team.pk}">&lt;Blue&gt;</li>\n</template></turbo-stream>'
    )
    team.name = "Red"
    await sync_to_async(team.save)()
    assert await page.receive_text() == (
        f'<turbo-stream action="replace" target="team_{team.pk}"><template>'
        f'<li id="team_{team.pk}">Red</li>\n</template></turbo-stream>'
    )
    pk = team.pk
    await sync_to_async(team.delete)()
    assert await page.receive_text() == (
        f'<turbo-stream action="remove" target="team_{pk}"></turbo-stream>'
    )


@transactional
async def test_nothing_is_sent_before_the_commit_nor_on_rollback(
    page: WebSocketTestConnection,
) -> None:
    def rolled_back() -> None:
        try:
            with transaction.atomic():
                Team.objects.create(name="Ghost")
                broadcast_fragment_sync("teams", "update", target="mark", html="inside")
                raise Rollback
        except Rollback:
            pass

    await then_mark(rolled_back)
    assert await page.receive_text() == MARKER.replace("marker", "inside")
    assert await page.receive_text() == MARKER
    assert not await sync_to_async(Team.objects.filter(name="Ghost").exists)()


@transactional
async def test_other_models_and_plain_groups_send_nothing(
    page: WebSocketTestConnection,
) -> None:
    await then_mark(lambda: Group.objects.create(name="plain"))
    assert await page.receive_text() == MARKER


def test_decorating_a_model_twice_is_improperly_configured() -> None:
    with pytest.raises(ImproperlyConfigured, match="twice"):
        broadcasts_to(lambda team: "other", template="live/group.html", target="x")(Team)
