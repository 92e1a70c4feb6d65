"""The scheduling screens, under /schedule/. Objects are named by public UUIDs in the path; the
only query parameters are a location's public id, a date, a time and view choices (no PHI)."""

from __future__ import annotations

import datetime as dt

from django.urls import path, register_converter

from scheduling import views


class IsoDateConverter:
    regex = r"\d{4}-\d{2}-\d{2}"

    def to_python(self, value: str) -> dt.date:
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:  # e.g. 2030-02-31: no such route
            raise ValueError(value) from exc

    def to_url(self, value: dt.date) -> str:
        return value.isoformat()


register_converter(IsoDateConverter, "isodate")

app_name = "scheduling"


def _action(name: str) -> object:
    return path(
        f"appointments/<uuid:public_id>/{name.replace('_', '-')}/",
        views.appointment_action,
        {"action": name},
        name=f"appointment_{name}",
    )


urlpatterns = [
    path("", views.day, name="index"),
    path("day/", views.day, name="day"),
    path("day/for/<uuid:patient_id>/", views.day, name="day_for_patient"),
    path("week/", views.week, name="week"),
    path("type-colors.css", views.type_colors, name="type_colors"),
    path("book/", views.book, name="book"),
    path("book/for/<uuid:patient_id>/", views.book, name="book_for_patient"),
    path("patients/pick/", views.patient_pick, name="patient_pick"),
    path("appointments/<uuid:public_id>/", views.appointment_detail, name="appointment"),
    path("appointments/<uuid:public_id>/reschedule/", views.reschedule, name="reschedule"),
    path("appointments/<uuid:public_id>/slots/", views.find_slots, name="find_slots"),
    *(_action(name) for name in views.ACTIONS),
    path("check-in/", views.checkin, name="checkin"),
    path("waitlist/", views.waitlist, name="waitlist"),
    path("waitlist/<uuid:public_id>/remove/", views.waitlist_remove, name="waitlist_remove"),
    path("availability/", views.availability, name="availability"),
    path("availability/rules/add/", views.rule_add, name="rule_add"),
    path("availability/rules/<uuid:public_id>/", views.rule_edit, name="rule_edit"),
    path(
        "availability/rules/<uuid:public_id>/occurrences/<isodate:day>/",
        views.occurrence_edit,
        name="occurrence_edit",
    ),
    path("availability/exceptions/add/", views.exception_add, name="exception_add"),
    path(
        "availability/exceptions/<uuid:public_id>/remove/",
        views.exception_remove,
        name="exception_remove",
    ),
]
