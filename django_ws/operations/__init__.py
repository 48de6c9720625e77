"""Running django-ws in production: metrics, the admin live view, limits, log context.

The lifecycle calls ``hooks.tracker`` at four points of a connection's life
(attach, admit, finished, and the log context at the start of ``run``); when no
feature is on, ``hooks.tracker`` is ``None`` and a connection pays one global
lookup. ``docs/operations.md`` is the user's guide; ``docs/architecture.md`` says
how an event flows through these modules.
"""
