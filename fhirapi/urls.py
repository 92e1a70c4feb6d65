from django.urls import path, re_path

from fhirapi import views

app_name = "fhir"

urlpatterns = [
    path("metadata", views.metadata, name="metadata"),
    path("Patient", views.patient_search, name="patient-search"),
    path("Patient/_search", views.patient_search_post, name="patient-search-post"),
    path("Patient/<uuid:public_id>", views.patient_read, name="patient-read"),
    path("Coverage", views.coverage_search, name="coverage-search"),
    path("Coverage/<uuid:public_id>", views.coverage_read, name="coverage-read"),
    re_path(r"", views.not_found, name="not-found"),
]
