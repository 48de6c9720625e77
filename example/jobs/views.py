"""Job pages: the list with a start button, and one job's progress bar."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

import django_ws

from .models import Job


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = Job.objects.filter(owner=request.user)[:20]
    return render(request, "jobs/job_list.html", {"jobs": jobs})


@login_required
@require_POST
def start(request: HttpRequest) -> HttpResponse:
    count = Job.objects.filter(owner=request.user).count()
    job = Job.objects.create(owner=request.user, name=f"Report #{count + 1}")
    return redirect("job-detail", job_id=job.pk)


@login_required
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(Job, pk=job_id, owner=request.user)
    socket_path = django_ws.reverse("job", kwargs={"job_id": job.pk})
    return render(request, "jobs/job_detail.html", {"job": job, "socket_path": socket_path})
