"""Create the benchmark database, a user and a logged-in session; print its key.

Run with DJANGO_SETTINGS_MODULE and BENCH_DB set; the auth variants send the
key as the ``sessionid`` cookie so the middleware does real lookups.
"""

from __future__ import annotations

import django
from django.core.management import call_command

django.setup()

from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
)  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402

call_command("migrate", verbosity=0, interactive=False)
user, _ = User.objects.get_or_create(username="bench")
user.set_password("bench")
user.save()
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
