"""``@broadcasts_to``: a model whose saves and deletes update every open page.

The decorator connects ``post_save`` and ``post_delete`` for the model (and
returns it unchanged, as ``@admin.register`` does). Each signal renders the
fragment at once, from the instance as it was saved, and sends it when the
transaction commits (``broadcast_on_commit``): nothing on rollback, and no page
sees a row before the database shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model
from django.db.models.signals import post_delete, post_save

from .names import dom_id
from .publish import broadcast_fragment_on_commit

ModelClass = TypeVar("ModelClass", bound=type[Model])

#: The models decorated so far: a second decoration would send everything twice.
_decorated: set[type[Model]] = set()


def broadcasts_to(
    stream: Callable[[Any], Any],
    *,
    template: str,
    target: str | Callable[[Any], str],
    context_name: str | None = None,
) -> Callable[[ModelClass], ModelClass]:
    """Broadcast a model's changes to the stream ``stream(instance)`` names.

    A created instance is rendered with ``template`` and appended to ``target``
    (an element id, or a function of the instance); an updated one replaces the
    element ``dom_id(instance)``; a deleted one removes it. The template gets the
    instance as ``object`` and under its model name (``card``), or
    ``context_name``. Its root element must carry ``id="{% dom_id card %}"``.
    """

    def decorate(model: ModelClass) -> ModelClass:
        if model in _decorated:
            raise ImproperlyConfigured(
                f"{model.__qualname__} is decorated with @broadcasts_to twice, which "
                "would send every change twice: keep one decorator, and broadcast to "
                "other streams with broadcast_fragment_on_commit in a signal handler."
            )
        _decorated.add(model)
        name = context_name or str(model._meta.model_name)

        def context(instance: Model) -> dict[str, Any]:
            return {"object": instance, name: instance}

        def saved(
            sender: Any, instance: Model, created: bool, using: str, raw: bool = False,
            **kwargs: Any,
        ) -> None:
            if raw:  # loaddata: fixtures are not changes anyone watches
                return
            if created:
                where = target(instance) if callable(target) else target
                action = "append"
            else:
                where, action = dom_id(instance), "replace"
            broadcast_fragment_on_commit(
                stream(instance), action, target=where, template=template,
                context=context(instance), using=using,
            )

        def deleted(sender: Any, instance: Model, using: str, **kwargs: Any) -> None:
            broadcast_fragment_on_commit(
                stream(instance), "remove", target=dom_id(instance), using=using
            )

        # weak=False: the receivers live as long as the model, not this call.
        post_save.connect(saved, sender=model, weak=False)
        post_delete.connect(deleted, sender=model, weak=False)
        return model

    return decorate
