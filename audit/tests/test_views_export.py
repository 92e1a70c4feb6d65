"""CSV export of the audit report: streamed, complete, filtered like the report, and audited."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from accounts.models import User
from audit.models import AuditEvent
from audit.selectors import EXPORT_CHUNK, EXPORT_HEADER, PAGE_SIZE
from audit.tests.conftest import add_events
from core.models import Location
from patients.models import Patient
from patients.tests.factories import PatientFactory

URL = reverse("audit:export")


def read_csv(response: StreamingHttpResponse) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body)))


@pytest.fixture
def privacy_client(privacy: User, login_client: Callable[..., Client]) -> Client:
    return login_client(privacy)


@pytest.fixture
def patient(main_clinic: Location) -> Patient:
    return PatientFactory(home_location=main_clinic, family_name="Diallo", given_name="Aminata")


def test_streams_every_matching_event_beyond_one_page(privacy_client: Client) -> None:
    # given: more events than one page of the report shows
    made = add_events(PAGE_SIZE + 7, event="patient.view")
    add_events(2, event="patient.update")

    # when
    response = privacy_client.post(URL, {"event": "patient.view", "sort": "sequence"})

    # then
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-trail-')
    assert response["Cache-Control"] == "no-store"
    rows = read_csv(response)
    assert [int(r["sequence"]) for r in rows] == [e.sequence for e in made]


def test_has_a_header_and_patient_mrn_and_name(privacy_client: Client, patient: Patient) -> None:
    add_events(1, patient=patient, reason="break-glass")

    response = privacy_client.post(URL, {"patient": patient.mrn, "event": "patient.view"})

    body = b"".join(response.streaming_content).decode("utf-8-sig")
    header, *_ = list(csv.reader(io.StringIO(body)))
    assert header == EXPORT_HEADER
    (row,) = csv.DictReader(io.StringIO(body))
    assert row["patient_mrn"] == patient.mrn
    assert row["patient_name"] == "Diallo, Aminata"
    assert row["patient_id"] == str(patient.public_id)
    assert row["event"] == "patient.view"
    assert row["reason"] == "break-glass"
    assert row["user"] == "someone"


def test_time_is_written_in_the_clinic_time_zone(privacy_client: Client, at_time, settings) -> None:
    import datetime as dt

    settings.TIME_ZONE = "America/New_York"
    at_time(dt.datetime(2026, 1, 5, 14, 0, tzinfo=dt.UTC))
    add_events(1, event="t.one")

    (row,) = read_csv(privacy_client.post(URL, {"event": "t.one"}))

    assert row["time"] == "2026-01-05T09:00:00-05:00"


def test_neutralises_spreadsheet_formulas(privacy_client: Client) -> None:
    add_events(1, event="t.formula", reason='=HYPERLINK("http://evil.example","x")')
    add_events(1, event="t.formula", username="@admin")

    rows = read_csv(privacy_client.post(URL, {"event": "t.formula", "sort": "sequence"}))

    assert rows[0]["reason"] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows[1]["user"] == "'@admin"


def test_the_export_is_itself_audited_with_the_filter_names(
    privacy_client: Client, patient: Patient
) -> None:
    # given
    add_events(2, patient=patient)

    # when
    response = privacy_client.post(
        URL, {"patient": patient.mrn, "outcome": "success", "date_from": "2020-01-01"}
    )
    b"".join(response.streaming_content)

    # then
    export = AuditEvent.objects.filter(event="audit.export").get()
    assert (export.action, export.category, export.username) == ("export", "audit", "privacy")
    assert export.fields == ["date_from", "outcome", "patient"]
    assert export.patient_public_id == patient.public_id
    assert patient.mrn not in str(AuditEvent.objects.filter(pk=export.pk).values().get())


def test_looks_up_patients_once_per_chunk_not_per_row(
    privacy_client: Client, main_clinic: Location, django_assert_max_num_queries
) -> None:
    # given: events about 25 different patients (one chunk)
    for p in PatientFactory.create_batch(25, home_location=main_clinic):
        add_events(1, patient=p, event="t.many")
    response = privacy_client.post(URL, {"event": "t.many"})

    # when / then: the events, and their patients, in one query each
    assert EXPORT_CHUNK > 25
    with django_assert_max_num_queries(2):
        rows = read_csv(response)
    assert len({r["patient_mrn"] for r in rows}) == 25


def test_bad_filters_show_the_form_with_errors_instead_of_a_file(
    privacy_client: Client,
) -> None:
    response = privacy_client.post(URL, {"patient": "no-such-mrn", "date_to": "yesterday"})

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "No patient has this MRN" in html
    assert "Enter a valid date." in html
    assert not AuditEvent.objects.filter(event="audit.export").exists()


@pytest.mark.parametrize("name", ["frontdesk", "officemanager", "sysadmin"])
def test_other_roles_are_forbidden_and_the_attempt_is_audited(
    persona: Callable[[str], User], login_client: Callable[..., Client], name: str
) -> None:
    response = login_client(persona(name)).post(URL, {})

    assert response.status_code == 403
    denied = AuditEvent.objects.order_by("-sequence").first()
    assert (denied.event, denied.outcome, denied.action) == ("audit.export", "denied", "query")


def test_anonymous_visitor_is_sent_to_sign_in(client: Client, db: None) -> None:
    response = client.post(URL, {})

    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_only_post_is_allowed(privacy_client: Client, method: str) -> None:
    response = getattr(privacy_client, method)(URL)

    assert response.status_code == 405


def test_the_report_page_offers_the_export_with_the_same_form(privacy_client: Client) -> None:
    html = privacy_client.get(reverse("audit:report")).content.decode()

    assert f'formaction="{URL}" data-plain-submit' in html
    assert "js/audit.js" in html
