"""Create the demo logins if they are missing, and print them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

#: Two users, so that two browsers can chat with each other.
DEMO_USERS = (("demo", "demo"), ("alice", "alice"))
#: The demo user who may also log into the admin.
ADMIN_USER = "demo"


class Command(BaseCommand):
    help = "Create the demo users (demo/demo, alice/alice) if missing and print their logins."

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()._default_manager
        for username, password in DEMO_USERS:
            user = users.filter(username=username).first()
            if user is None:
                user = users.create_user(username=username, password=password)
                self.stdout.write(f"Created user {username!r}.")
            elif not user.check_password(password):
                self.stdout.write(
                    f"User {username!r} exists with another password; left as it is."
                )
                continue
            if username == ADMIN_USER and not user.is_superuser:
                # demo may use the admin, where the live board's cards can be edited too.
                user.is_staff = user.is_superuser = True
                user.save(update_fields=["is_staff", "is_superuser"])
            self.stdout.write(
                self.style.SUCCESS(f"Log in as:  username {username}  password {password}")
            )
