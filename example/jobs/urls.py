from django.urls import path

from . import views

urlpatterns = [
    path("", views.job_list, name="jobs"),
    path("start/", views.start, name="job-start"),
    path("<int:job_id>/", views.job_detail, name="job-detail"),
]
