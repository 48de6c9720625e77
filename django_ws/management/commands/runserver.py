"""``manage.py runserver`` serving HTTP and WebSockets with uvicorn, autoreload kept.

Django's own ``runserver`` is a WSGI server, so it cannot speak WebSocket. This
command keeps everything else of it (arguments, system checks, the migrations
warning, the autoreloader) and replaces only the server: the project's ASGI
application runs under uvicorn, from the ``server`` extra. Like daphne's, it wins
over ``django.contrib.staticfiles``' ``runserver`` when ``django_ws`` is listed
first in ``INSTALLED_APPS``, and it serves static files the same way.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from importlib import import_module
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.core.management.commands.runserver import Command as RunserverCommand
from django.db import connections
from django.utils import autoreload
from django.utils.module_loading import import_string

#: Where the application comes from when neither setting nor ``asgi`` module names one.
FALLBACK = "django_ws.get_websocket_application()"

#: Seconds a reload waits for uvicorn to close its sockets before the process leaves.
RELOAD_GRACE = 5.0

MISSING_UVICORN = (
    "runserver serves WebSockets with uvicorn, which is not installed ({error}). "
    'Install it with: pip install "django-ws[server]"'
)


def load_asgi_application() -> tuple[Any, str]:
    """Return the project's ASGI application and the dotted path it came from.

    ``ASGI_APPLICATION`` if set (the setting Channels and daphne use), else the
    ``application`` of the ``asgi`` module next to ``ROOT_URLCONF``, else a
    ``get_websocket_application()`` made here, so a project without ``asgi.py``
    still gets its WebSockets in development.
    """
    explicit = getattr(settings, "ASGI_APPLICATION", None)
    if explicit:
        try:
            return import_string(explicit), str(explicit)
        except ImportError as error:
            raise CommandError(
                f"ASGI_APPLICATION is {explicit!r}, which cannot be imported ({error}). "
                "Point it at your asgi.py's application, e.g. 'mysite.asgi.application'."
            ) from error
    package = str(settings.ROOT_URLCONF).rpartition(".")[0]
    module_name = f"{package}.asgi" if package else "asgi"
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        from django_ws import get_websocket_application

        return get_websocket_application(), FALLBACK
    application = getattr(module, "application", None)
    if application is None:
        raise CommandError(
            f"{module_name} has no `application`. End it with "
            "`application = get_websocket_application()` (from django_ws), or set "
            "ASGI_APPLICATION to the application's dotted path."
        )
    return application, f"{module_name}.application"


class Command(RunserverCommand):
    help = "Starts a development server for HTTP and WebSockets (uvicorn), with autoreload."

    # Set by Django's handle() from the addrport argument.
    addr: str
    port: str
    _raw_ipv6: bool

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        if apps.is_installed("django.contrib.staticfiles"):
            # The same options as staticfiles' runserver, which this one replaces.
            parser.add_argument(
                "--nostatic",
                action="store_false",
                dest="use_static_handler",
                help="Do NOT serve static files at STATIC_URL.",
            )
            parser.add_argument(
                "--insecure",
                action="store_true",
                dest="insecure_serving",
                help="Serve static files even if DEBUG is False.",
            )

    def handle(self, *args: Any, **options: Any) -> None:
        # Checked here, in the first process, so the error comes before any reloader.
        try:
            import uvicorn  # noqa: F401
        except ImportError as error:
            raise CommandError(MISSING_UVICORN.format(error=error)) from error
        super().handle(*args, **options)

    def get_application(self, **options: Any) -> tuple[Any, str]:
        """Return the ASGI application to serve, wrapped to serve static files."""
        application, origin = load_asgi_application()
        if (
            apps.is_installed("django.contrib.staticfiles")
            and options.get("use_static_handler", True)
            and (settings.DEBUG or options.get("insecure_serving", False))
        ):
            from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

            application = ASGIStaticFilesHandler(application)
        return application, origin

    def inner_run(self, *args: Any, **options: Any) -> None:
        """Check the project, then serve it with uvicorn until stopped or reloaded."""
        import uvicorn

        autoreload.raise_last_exception()
        shutdown_message = options.get("shutdown_message", "")
        if not options["skip_checks"]:
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
        self.check_migrations()
        connections.close_all()

        application, origin = self.get_application(**options)
        host = "0.0.0.0" if self.addr == "0" else self.addr
        server = uvicorn.Server(
            uvicorn.Config(application, host=host, port=int(self.port), lifespan="auto")
        )
        self.print_banner(origin, uvicorn.__version__)
        stopped = threading.Event()
        autoreload.trigger_reload = exit_for_reload(server, stopped)  # type: ignore[assignment]
        try:
            server.run()
        except KeyboardInterrupt:
            if shutdown_message:
                self.stdout.write(shutdown_message)
            sys.exit(0)
        except SystemExit:
            # uvicorn exits this way when it cannot bind (it has logged why). The
            # reloader's thread cannot end the process with sys.exit: do it for it.
            sys.stderr.flush()
            os._exit(1)
        finally:
            stopped.set()
        if not server.started:
            raise CommandError(
                "The ASGI application failed to start; the error is logged above."
            )

    def print_banner(self, origin: str, uvicorn_version: str) -> None:
        quit_command = "CTRL-BREAK" if sys.platform == "win32" else "CONTROL-C"
        if self._raw_ipv6:
            addr = f"[{self.addr}]"
        elif self.addr == "0":
            addr = "0.0.0.0"
        else:
            addr = self.addr
        now = datetime.now().strftime("%B %d, %Y - %X")
        self.stdout.write(
            f"{now}\n"
            f"Django version {self.get_version()}, using settings "
            f"{settings.SETTINGS_MODULE!r}\n"
            f"Starting ASGI/WebSocket development server at "
            f"{self.protocol}://{addr}:{self.port}/\n"
            f"Serving {origin} with uvicorn {uvicorn_version}.\n"
            f"Quit the server with {quit_command}."
        )
        self.stdout.flush()


def exit_for_reload(server: Any, stopped: threading.Event) -> Callable[[str], None]:
    """Return a replacement for Django's ``autoreload.trigger_reload``.

    Django's leaves the process with ``sys.exit(3)`` from the reloader's thread and
    lets the interpreter wind down uvicorn's thread and the thread pools; a pool
    thread still busy at that moment can keep the process alive, and the reload
    never comes (seen in CI). This one stops uvicorn (its sockets get 1012, so
    clients reconnect to the new process), waits for it at most ``RELOAD_GRACE``
    seconds, and leaves with 3, the code that tells the parent to restart.
    """

    def trigger_reload(filename: str) -> None:
        autoreload.logger.info("%s changed, reloading.", filename)
        server.should_exit = True
        stopped.wait(RELOAD_GRACE)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(3)

    return trigger_reload
