"""URLs of the 837P batches screen (the lead mounts them at /billing/batches/)."""

from django.urls import URLPattern, path

from billing import views_batches as views

app_name = "billing_batches"

urlpatterns: list[URLPattern] = [
    path("", views.batch_list, name="list"),
    path("build/", views.batch_build, name="build"),
    path("build/<uuid:task_id>/", views.batch_progress, name="progress"),
    path("<uuid:public_id>/download/", views.batch_download, name="download"),
]
