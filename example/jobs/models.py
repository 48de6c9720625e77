"""A long job whose progress lives in the database."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F
from django.db.models.functions import Least
from django.utils import timezone


class Job(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    name = models.CharField(max_length=100)
    progress = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.name} ({self.progress}%)"

    @property
    def done(self) -> bool:
        return self.progress >= 100

    def advance(self, step: int) -> int:
        """Add ``step`` percent in one UPDATE (two tabs on one job add up) and reload."""
        Job.objects.filter(pk=self.pk, progress__lt=100).update(
            progress=Least(F("progress") + step, 100)
        )
        Job.objects.filter(pk=self.pk, progress__gte=100, finished_at=None).update(
            finished_at=timezone.now()
        )
        self.refresh_from_db(fields=["progress", "finished_at"])
        return self.progress
