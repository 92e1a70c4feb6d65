"""URLs of the remittance app (mounted at /remittances/)."""

from django.urls import URLPattern, URLResolver, path

from remittance import views

app_name = "remittance"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.file_list, name="file_list"),
    path("unmatched/", views.unmatched_list, name="unmatched_list"),
    path("unmatched/<uuid:public_id>/resolve/", views.unmatched_resolve, name="unmatched_resolve"),
    path("upload/", views.upload, name="upload"),
    path("uploads/<uuid:public_id>/", views.job, name="job"),
]
