from django.urls import path

from patients import views

app_name = "patients"

urlpatterns = [
    path("", views.search, name="search"),
    path("register/", views.register, name="register"),
    path("merge/", views.merge, name="merge"),
    path("<uuid:public_id>/", views.detail, name="detail"),
    path("<uuid:public_id>/edit/", views.edit, name="edit"),
    path("<uuid:public_id>/coverages/add/", views.coverage_add, name="coverage_add"),
    path(
        "<uuid:public_id>/coverages/<uuid:coverage_id>/edit/",
        views.coverage_edit,
        name="coverage_edit",
    ),
    path(
        "<uuid:public_id>/coverages/<uuid:coverage_id>/verify/",
        views.coverage_verify,
        name="coverage_verify",
    ),
    path("<uuid:public_id>/alerts/add/", views.flag_add, name="flag_add"),
    path("<uuid:public_id>/alerts/<uuid:flag_id>/clear/", views.flag_clear, name="flag_clear"),
    path("<uuid:public_id>/break-glass/", views.break_glass, name="break_glass"),
]
