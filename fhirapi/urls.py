from django.urls import path, re_path

from fhirapi import scheduling, views

app_name = "fhir"

urlpatterns = [
    path("metadata", views.metadata, name="metadata"),
    path("Patient", views.patient_search, name="patient-search"),
    path("Patient/_search", views.patient_search_post, name="patient-search-post"),
    path("Patient/<uuid:public_id>", views.patient_read, name="patient-read"),
    path("Coverage", views.coverage_search, name="coverage-search"),
    path("Coverage/<uuid:public_id>", views.coverage_read, name="coverage-read"),
    path("Practitioner", scheduling.practitioner_search, name="practitioner-search"),
    path("Practitioner/<uuid:public_id>", scheduling.practitioner_read, name="practitioner-read"),
    path("Location", scheduling.location_search, name="location-search"),
    path("Location/<uuid:public_id>", scheduling.location_read, name="location-read"),
    path("Schedule", scheduling.schedule_search, name="schedule-search"),
    path("Schedule/<uuid:public_id>", scheduling.schedule_read, name="schedule-read"),
    path("Slot", scheduling.slot_search, name="slot-search"),
    # A slot's id: the schedule id (hex), the UTC start (YYYYMMDDHHMM) and the minutes.
    re_path(
        r"^Slot/(?P<slot>[0-9a-f]{32}-[0-9]{12}-[0-9]{1,4})$",
        scheduling.slot_read,
        name="slot-read",
    ),
    path("Appointment", scheduling.appointment_search, name="appointment-search"),
    path("Appointment/<uuid:public_id>", scheduling.appointment_read, name="appointment-read"),
    re_path(r"", views.not_found, name="not-found"),
]
