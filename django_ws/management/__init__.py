"""Management commands of django-ws: ``runserver`` with WebSockets."""
