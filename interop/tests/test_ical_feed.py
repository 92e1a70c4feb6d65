"""The per-practitioner iCalendar feed: valid RFC 5545, minimum necessary, secret and revocable."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import icalendar
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from core.models import Location
from interop.ical import initials
from interop.log_filters import RedactFeedTokens, redact
from patients.tests.factories import PatientFactory
from scheduling.models import Practitioner
from scheduling.tests.factories import PractitionerFactory

from .factories import AppointmentFactory, FeedTokenFactory, ResourceFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("interop.tests.urls")]

RAW = "feed-secret-0123456789abcdefghij"


def feed_url(raw: str = RAW) -> str:
    return reverse("interop:ical_feed", kwargs={"token": raw})


@pytest.fixture
def doctor(main_clinic: Location) -> Practitioner:
    return PractitionerFactory(given_name="Grace", family_name="Hopper", locations=[main_clinic])


def book(doctor: Practitioner, location: Location, start: dt.datetime, **extra: object) -> object:
    patient = PatientFactory(
        home_location=location,
        given_name="Zoë",
        family_name="Quist",
        birth_date=dt.date(1980, 1, 2),
    )
    return AppointmentFactory(
        patient=patient,
        location=location,
        start=start,
        end=start + dt.timedelta(minutes=30),
        practitioners=[doctor],
        **extra,
    )


def parse(response: object) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(response.content)


def test_feed_lists_the_practitioners_blocking_appointments_minimum_necessary(
    client: Client, doctor: Practitioner, main_clinic: Location
) -> None:
    # given
    FeedTokenFactory(practitioner=doctor, raw=RAW)
    soon = timezone.now().replace(microsecond=0) + dt.timedelta(days=2)
    room = ResourceFactory(location=main_clinic, name="Exam 4")
    kept = book(doctor, main_clinic, soon, room=room)
    book(doctor, main_clinic, soon + dt.timedelta(hours=1), status="confirmed")
    book(doctor, main_clinic, soon + dt.timedelta(hours=2), status="cancelled", cancel_reason="x")
    book(doctor, main_clinic, soon + dt.timedelta(hours=3), status="no_show")
    book(PractitionerFactory(locations=[main_clinic]), main_clinic, soon)  # someone else's
    # when
    response = client.get(feed_url())
    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = parse(response)
    events = calendar.walk("VEVENT")
    assert len(events) == 2
    first = events[0]
    assert str(first["UID"]) == str(kept.public_id)
    assert str(first["SUMMARY"]) == "Follow-up visit · Z.Q."
    assert first.decoded("DTSTART") == soon.astimezone(dt.UTC)
    assert first.decoded("DTSTART").utcoffset() == dt.timedelta(0)
    assert first.decoded("DTEND") == (soon + dt.timedelta(minutes=30)).astimezone(dt.UTC)
    assert str(first["STATUS"]) == "CONFIRMED"
    assert str(first["LOCATION"]) == "Main Street Clinic, Exam 4"
    body = response.content.decode()
    assert len(re.findall(r"^DTSTART:\d{8}T\d{6}Z\r$", body, re.MULTILINE)) == 2  # UTC
    for phi in ("Zoë", "Quist", "1980"):
        assert phi not in body


def test_only_the_window_of_30_days_back_and_90_ahead_is_served(
    client: Client, doctor: Practitioner, main_clinic: Location
) -> None:
    FeedTokenFactory(practitioner=doctor, raw=RAW)
    now = timezone.now().replace(microsecond=0)
    for days in (-40, -29, 89, 100):
        book(doctor, main_clinic, now + dt.timedelta(days=days))
    events = parse(client.get(feed_url())).walk("VEVENT")
    starts = sorted((e.decoded("DTSTART") - now).days for e in events)
    assert starts == [-29, 89]


def test_a_type_only_feed_leaves_out_the_initials(
    client: Client, doctor: Practitioner, main_clinic: Location
) -> None:
    FeedTokenFactory(practitioner=doctor, raw=RAW, detail="type")
    book(doctor, main_clinic, timezone.now() + dt.timedelta(days=1))
    (event,) = parse(client.get(feed_url())).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Follow-up visit"


def test_each_fetch_is_audited_without_the_token(
    client: Client, doctor: Practitioner, main_clinic: Location
) -> None:
    token = FeedTokenFactory(practitioner=doctor, raw=RAW)
    book(doctor, main_clinic, timezone.now() + dt.timedelta(days=1))
    client.get(feed_url())
    event = AuditEvent.objects.get(event="ical.fetch")
    assert (event.category, event.outcome, event.object_id) == (
        "scheduling",
        "success",
        str(token.public_id),
    )
    assert RAW not in str(AuditEvent.objects.values_list())
    token.refresh_from_db()
    assert token.last_fetched_at is not None


def test_an_unknown_token_is_404_and_audited(client: Client) -> None:
    assert client.get(feed_url("not-a-real-token-0000")).status_code == 404
    denied = AuditEvent.objects.get(event="ical.fetch")
    assert (denied.outcome, denied.reason) == ("denied", "unknown token")


def test_a_revoked_token_is_404(client: Client, doctor: Practitioner) -> None:
    FeedTokenFactory(practitioner=doctor, raw=RAW, revoked_at=timezone.now())
    assert client.get(feed_url()).status_code == 404


def test_the_feed_needs_no_sign_in_and_answers_head(client: Client, doctor: Practitioner) -> None:
    FeedTokenFactory(practitioner=doctor, raw=RAW)
    assert client.head(feed_url()).status_code == 200


def test_the_feed_refuses_post(client: Client, doctor: Practitioner) -> None:
    FeedTokenFactory(practitioner=doctor, raw=RAW)
    assert client.post(feed_url()).status_code == 405


def test_an_empty_calendar_is_still_valid(client: Client, doctor: Practitioner) -> None:
    FeedTokenFactory(practitioner=doctor, raw=RAW)
    calendar = parse(client.get(feed_url()))
    assert calendar.walk("VEVENT") == []
    assert str(calendar["VERSION"]) == "2.0"
    assert "Grace Hopper" in str(calendar["X-WR-CALNAME"])


def test_the_feed_runs_a_fixed_number_of_queries(
    client: Client,
    doctor: Practitioner,
    main_clinic: Location,
    django_assert_max_num_queries: Any,
) -> None:
    FeedTokenFactory(practitioner=doctor, raw=RAW)
    for hours in range(25):
        book(doctor, main_clinic, timezone.now() + dt.timedelta(days=1, hours=hours))
    with django_assert_max_num_queries(8):
        assert client.get(feed_url()).status_code == 200


def test_initials_fold_accents_and_skip_what_is_missing() -> None:
    assert initials("Émile", "Öztürk") == "E.O."
    assert initials("", "Doe") == "D."


def test_log_records_with_a_feed_path_lose_the_token() -> None:
    import logging

    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Not Found: %s", (feed_url(),), None
    )
    RedactFeedTokens().filter(record)
    assert record.getMessage() == "Not Found: /interfaces/ical/<redacted>.ics"
    assert redact(f"GET {feed_url()} 200") == "GET /interfaces/ical/<redacted>.ics 200"
    access = logging.LogRecord(
        "gunicorn.access", logging.INFO, __file__, 1, "%(r)s %(s)s", None, None
    )
    access.args = {"r": f"GET {feed_url()} HTTP/1.1", "s": "200"}
    RedactFeedTokens().filter(access)
    assert access.getMessage() == "GET /interfaces/ical/<redacted>.ics HTTP/1.1 200"
