"""Availability management: a practitioner's rules in plain words, adding and editing a rule
(RRULE checked), changing or cancelling one occurrence without touching the others, and holidays,
leave and blocked time. Only for those who manage schedules; every write audited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from audit.models import AuditEvent
from core.models import Location
from scheduling.availability import free_intervals
from scheduling.models import (
    AvailabilityException,
    AvailabilityOccurrence,
    AvailabilityRule,
    ExceptionKind,
    Practitioner,
)
from scheduling.templatetags.scheduling_tags import describe_rrule
from scheduling.tests.conftest import local

pytestmark = pytest.mark.django_db

PAGE = "/schedule/availability/"


@pytest.fixture
def client_as(persona: Callable[[str], User], login_client: Callable[..., Client]) -> Any:
    return lambda name: login_client(persona(name))


@pytest.fixture
def rule(ana: Practitioner) -> AvailabilityRule:
    return AvailabilityRule.objects.get(practitioner=ana)


def page(location: Location, practitioner: Practitioner) -> str:
    return f"{PAGE}?location={location.public_id}&practitioner={practitioner.public_id}"


def test_rules_are_shown_in_plain_words_with_the_coming_occurrences(
    client_as: Any, ana: Practitioner, main_clinic: Location
) -> None:
    html = client_as("officeadmin").get(page(main_clinic, ana)).content.decode()

    assert "Every Mon, Tue, Wed, Thu, Fri 08:00\u201317:00" in html
    assert "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR" in html
    assert html.count("/occurrences/") >= 19  # four weeks of weekdays ahead


@pytest.mark.parametrize(
    ("rrule", "words"),
    [
        ("FREQ=WEEKLY;BYDAY=MO,WE,FR", "Every Mon, Wed, Fri 08:00\u201312:00"),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU", "Every 2 weeks on Tue 08:00\u201312:00"),
        ("FREQ=DAILY", "Every day 08:00\u201312:00"),
        ("FREQ=MONTHLY;BYDAY=1MO", "The first Mon of every month 08:00\u201312:00"),
        ("FREQ=MONTHLY;BYDAY=-1FR", "The last Fri of every month 08:00\u201312:00"),
        ("FREQ=MONTHLY;BYMONTHDAY=15;COUNT=6", "Day 15 of every month, 6 times 08:00\u201312:00"),
        ("FREQ=WEEKLY;BYDAY=SA;UNTIL=20301231", "Every Sat, until 2030-12-31 08:00\u201312:00"),
        ("FREQ=YEARLY;BYMONTH=1", "Repeats FREQ=YEARLY;BYMONTH=1 08:00\u201312:00"),
    ],
)
def test_recurrence_rules_in_plain_words(rrule: str, words: str) -> None:
    assert describe_rrule(rrule, dt.time(8), dt.time(12)) == words


def test_adding_a_rule(client_as: Any, ben: Practitioner, main_clinic: Location) -> None:
    response = client_as("officeadmin").post(
        "/schedule/availability/rules/add/",
        {
            "location": str(main_clinic.public_id),
            "practitioner": str(ben.public_id),
            "start_date": "2030-01-01",
            "start_time": "18:00",
            "end_time": "20:00",
            "rrule": "FREQ=WEEKLY;BYDAY=TH",
            "is_active": "on",
        },
    )

    added = AvailabilityRule.objects.filter(practitioner=ben).order_by("-id").first()
    assert response.status_code == 302
    assert response["Location"] == page(main_clinic, ben)
    assert (added.rrule, added.start_time, added.end_time) == (
        "FREQ=WEEKLY;BYDAY=TH",
        dt.time(18),
        dt.time(20),
    )
    assert AuditEvent.objects.filter(event="availability_rule.create").exists()


@pytest.mark.parametrize(
    ("rrule", "message"),
    [
        ("FREQ=SOMETIMES", "Not a valid RFC 5545 recurrence rule"),
        ("DTSTART:20300101T090000\nRRULE:FREQ=DAILY", "Leave DTSTART out"),
    ],
)
def test_a_rule_that_is_not_rfc_5545_is_refused_by_name(
    client_as: Any, ben: Practitioner, main_clinic: Location, rrule: str, message: str
) -> None:
    response = client_as("officeadmin").post(
        "/schedule/availability/rules/add/",
        {
            "location": str(main_clinic.public_id),
            "practitioner": str(ben.public_id),
            "start_date": "2030-01-01",
            "start_time": "09:00",
            "end_time": "12:00",
            "rrule": rrule,
        },
    )

    html = response.content.decode()
    assert response.status_code == 422
    assert message in html
    assert 'id="id_rrule_error"' in html
    assert AvailabilityRule.objects.filter(practitioner=ben).count() == 1


def test_editing_a_rule(client_as: Any, rule: AvailabilityRule) -> None:
    url = f"/schedule/availability/rules/{rule.public_id}/"
    client = client_as("officeadmin")

    form = client.get(url).content.decode()
    response = client.post(
        url,
        {
            "start_date": "2024-01-01",
            "start_time": "09:00",
            "end_time": "13:00",
            "rrule": "FREQ=WEEKLY;BYDAY=MO,WE",
            "is_active": "on",
        },
    )

    rule.refresh_from_db()
    assert 'value="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"' in form
    assert response.status_code == 302
    assert (rule.rrule, rule.end_time) == ("FREQ=WEEKLY;BYDAY=MO,WE", dt.time(13))


def test_an_end_before_the_start_is_named(client_as: Any, rule: AvailabilityRule) -> None:
    response = client_as("officeadmin").post(
        f"/schedule/availability/rules/{rule.public_id}/",
        {
            "start_date": "2024-01-01",
            "start_time": "13:00",
            "end_time": "09:00",
            "rrule": "FREQ=DAILY",
        },
    )

    assert response.status_code == 422
    assert "The end time must be after the start time." in response.content.decode()


def test_cancelling_one_occurrence_leaves_the_others(
    client_as: Any, rule: AvailabilityRule, ana: Practitioner, main_clinic: Location,
    monday: dt.date,
) -> None:  # fmt: skip
    tuesday = monday + dt.timedelta(days=1)
    url = f"/schedule/availability/rules/{rule.public_id}/occurrences/{monday}/"

    response = client_as("officeadmin").post(url, {"change": "cancelled", "reason": "Training"})

    assert response.status_code == 302
    override = AvailabilityOccurrence.objects.get(rule=rule)
    assert (override.original_date, override.is_cancelled) == (monday, True)

    def free(day: dt.date) -> list[Any]:
        return free_intervals(
            practitioner_id=ana.pk,
            location_id=main_clinic.pk,
            start=local(day, "00:00"),
            end=local(day, "23:59"),
        )

    assert free(monday) == []
    assert free(tuesday) == [(local(tuesday, "08:00"), local(tuesday, "17:00"))]


def test_changing_one_occurrences_hours_and_putting_it_back(
    client_as: Any, rule: AvailabilityRule, monday: dt.date
) -> None:
    url = f"/schedule/availability/rules/{rule.public_id}/occurrences/{monday}/"
    client = client_as("officeadmin")

    client.post(url, {"change": "changed", "start_time": "10:00", "end_time": "14:00"})
    changed = AvailabilityOccurrence.objects.get(rule=rule)
    client.post(url, {"change": "planned"})

    assert (changed.start_time, changed.end_time) == (dt.time(10), dt.time(14))
    assert not AvailabilityOccurrence.objects.exists()


def test_different_hours_need_both_times(
    client_as: Any, rule: AvailabilityRule, monday: dt.date
) -> None:
    response = client_as("officeadmin").post(
        f"/schedule/availability/rules/{rule.public_id}/occurrences/{monday}/",
        {"change": "changed", "start_time": "10:00"},
    )

    assert response.status_code == 422
    assert "Give the hours of this occurrence." in response.content.decode()


def test_cancelling_an_occurrence_needs_a_reason(
    client_as: Any, rule: AvailabilityRule, monday: dt.date
) -> None:
    response = client_as("officeadmin").post(
        f"/schedule/availability/rules/{rule.public_id}/occurrences/{monday}/",
        {"change": "cancelled"},
    )

    assert response.status_code == 422
    assert "Say why this occurrence is cancelled." in response.content.decode()


def test_an_impossible_date_in_the_path_is_not_found(
    client_as: Any, rule: AvailabilityRule
) -> None:
    response = client_as("officeadmin").get(
        f"/schedule/availability/rules/{rule.public_id}/occurrences/2030-02-31/"
    )

    assert response.status_code == 404


def test_adding_leave_and_a_holiday(
    client_as: Any, ana: Practitioner, main_clinic: Location, monday: dt.date
) -> None:
    client = client_as("officeadmin")
    base = {"location": str(main_clinic.public_id), "shown": str(ana.public_id)}

    leave = client.post(
        "/schedule/availability/exceptions/add/",
        {**base, "kind": "leave", "practitioner": str(ana.public_id), "reason": "Conference",
         "start": f"{monday}T08:00", "end": f"{monday + dt.timedelta(days=2)}T18:00"},
    )  # fmt: skip
    holiday = client.post(
        "/schedule/availability/exceptions/add/",
        {**base, "kind": "holiday", "practitioner": "", "reason": "Clinic closed",
         "start": f"{monday}T00:00", "end": f"{monday + dt.timedelta(days=1)}T00:00"},
    )  # fmt: skip

    assert leave.status_code == 302
    assert holiday.status_code == 302
    assert leave["Location"] == page(main_clinic, ana)
    rows = {e.kind: e for e in AvailabilityException.objects.all()}
    assert rows[ExceptionKind.LEAVE].practitioner == ana
    assert rows[ExceptionKind.LEAVE].start == local(monday, "08:00")
    assert rows[ExceptionKind.HOLIDAY].practitioner is None


def test_leave_needs_a_practitioner(
    client_as: Any, ana: Practitioner, main_clinic: Location, monday: dt.date
) -> None:
    response = client_as("officeadmin").post(
        "/schedule/availability/exceptions/add/",
        {"location": str(main_clinic.public_id), "kind": "leave", "practitioner": "",
         "reason": "Away", "start": f"{monday}T08:00", "end": f"{monday}T12:00"},
    )  # fmt: skip

    assert response.status_code == 422
    assert "Choose whose leave or blocked time this is." in response.content.decode()


def test_removing_an_exception(
    client_as: Any, ana: Practitioner, main_clinic: Location, at: Any
) -> None:
    exception = AvailabilityException.objects.create(
        location=main_clinic, practitioner=ana, kind="blocked", start=at("12:00"),
        end=at("13:00"), reason="Lunch meeting",
    )  # fmt: skip

    response = client_as("officeadmin").post(
        f"/schedule/availability/exceptions/{exception.public_id}/remove/"
    )

    assert response.status_code == 302
    assert not AvailabilityException.objects.exists()
    assert AuditEvent.objects.filter(event="availability_exception.delete").exists()


# ---- who may manage availability ---------------------------------------------------------------


def test_availability_pages_access(
    client: Client, client_as: Any, rule: AvailabilityRule, main_clinic: Location,
    ana: Practitioner, monday: dt.date,
) -> None:  # fmt: skip
    occurrence = f"/schedule/availability/rules/{rule.public_id}/occurrences/{monday}/"
    rule_page = f"/schedule/availability/rules/{rule.public_id}/"
    for url in (page(main_clinic, ana), rule_page, occurrence):
        assert client.get(url).status_code == 302
        assert client_as("frontdesk").get(url).status_code == 403
        assert client_as("officeadmin").get(url).status_code == 200
    assert client_as("officeadmin").post(page(main_clinic, ana)).status_code == 405
    assert client_as("officeadmin").put(rule_page).status_code == 405


def test_managers_elsewhere_cannot_see_or_change_this_locations_availability(
    client_as: Any, persona: Any, rule: AvailabilityRule, main_clinic: Location,
    riverside: Location, ana: Practitioner, monday: dt.date, login_client: Any,
) -> None:  # fmt: skip
    from accounts.tests.factories import UserFactory

    elsewhere = login_client(
        UserFactory(username="rivermanager", roles=["medical_office_admin"], locations=[riverside])
    )

    assert elsewhere.get(page(main_clinic, ana)).status_code == 404
    assert elsewhere.get(f"/schedule/availability/rules/{rule.public_id}/").status_code == 404
    assert (
        elsewhere.post(
            f"/schedule/availability/rules/{rule.public_id}/occurrences/{monday}/",
            {"change": "cancelled", "reason": "x"},
        ).status_code
        == 404
    )
    assert not AvailabilityOccurrence.objects.exists()


def test_adding_and_removing_need_the_capability(
    client: Client, client_as: Any, ana: Practitioner, main_clinic: Location, at: Any
) -> None:
    exception = AvailabilityException.objects.create(
        location=main_clinic, practitioner=ana, kind="blocked", start=at("12:00"),
        end=at("13:00"), reason="Lunch meeting",
    )  # fmt: skip
    remove = f"/schedule/availability/exceptions/{exception.public_id}/remove/"
    for url in (
        "/schedule/availability/rules/add/",
        "/schedule/availability/exceptions/add/",
        remove,
    ):
        assert client.post(url).status_code == 302
        assert client_as("frontdesk").post(url).status_code == 403
        assert client_as("officeadmin").get(url).status_code == 405
    assert client_as("outsider").post(remove).status_code == 403
    assert AvailabilityException.objects.exists()
