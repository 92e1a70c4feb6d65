"""URLs of the remittance app (mounted at /remittances/)."""

from django.urls import URLPattern, URLResolver, path

from remittance import views, views_denials

app_name = "remittance"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.file_list, name="file_list"),
    path("unmatched/", views.unmatched_list, name="unmatched_list"),
    path("unmatched/<uuid:public_id>/resolve/", views.unmatched_resolve, name="unmatched_resolve"),
    path("upload/", views.upload, name="upload"),
    path("uploads/<uuid:public_id>/", views.job, name="job"),
    path("denials/", views_denials.queue, name="denial_queue"),
    path("denials/assign/", views_denials.assign_many, name="denial_assign_many"),
    path("denials/<uuid:public_id>/", views_denials.detail, name="denial"),
    path("denials/<uuid:public_id>/assign/", views_denials.assign, name="denial_assign"),
    path("denials/<uuid:public_id>/status/", views_denials.set_status, name="denial_status"),
    path("denials/<uuid:public_id>/notes/", views_denials.add_note, name="denial_note"),
    path("denials/<uuid:public_id>/appeal/", views_denials.appeal, name="denial_appeal"),
    path(
        "denials/<uuid:public_id>/letters/<uuid:letter_id>/",
        views_denials.letter,
        name="denial_letter",
    ),
    path("denials/<uuid:public_id>/resubmit/", views_denials.resubmit, name="denial_resubmit"),
]
