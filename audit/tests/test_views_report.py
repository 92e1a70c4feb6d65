"""The privacy officer's audit report: access, filters, sorting, paging, and its own audit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from accounts.tests.factories import UserFactory
from audit.models import Action, AuditEvent, Category, Outcome
from audit.selectors import PAGE_SIZE
from audit.services import record
from audit.tests.conftest import add_events
from core.models import Location
from patients.models import Patient
from patients.services import patient_merge
from patients.tests.factories import PatientFactory

URL = reverse("audit:report")
HTMX = {"HTTP_HX_REQUEST": "true"}


def sequences(response: Any) -> list[int]:
    return [row.event.sequence for row in response.context["page"].rows]


def newest_first(made: list[AuditEvent]) -> list[int]:
    return sorted((e.sequence for e in made), reverse=True)


def last_event() -> AuditEvent:
    return AuditEvent.objects.order_by("-sequence").first()


@pytest.fixture
def privacy_client(privacy: User, login_client: Callable[..., Client]) -> Client:
    return login_client(privacy)


@pytest.fixture
def patient(main_clinic: Location) -> Patient:
    return PatientFactory(home_location=main_clinic, family_name="Okafor", given_name="Ngozi")


# --- access ---------------------------------------------------------------------------------


def test_privacy_officer_sees_the_report(privacy_client: Client) -> None:
    made = add_events(3)

    response = privacy_client.get(URL)

    assert response.status_code == 200
    assert sequences(response)[:3] == newest_first(made)
    assert b'id="audit-table"' in response.content


def test_privacy_officer_at_another_location_sees_the_whole_trail(
    login_client: Callable[..., Client], riverside: Location, main_clinic: Location
) -> None:
    # given: events about a patient of the main clinic, and an officer at Riverside
    made = add_events(2, patient=PatientFactory(home_location=main_clinic))
    officer = UserFactory(username="privacy2", roles=["privacy_officer"], locations=[riverside])

    # when
    response = login_client(officer).get(URL)

    # then
    assert response.status_code == 200
    assert set(newest_first(made)) <= set(sequences(response))


@pytest.mark.parametrize("name", ["frontdesk", "officemanager", "sysadmin", "meddirector"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_other_roles_are_forbidden_and_the_attempt_is_audited(
    persona: Callable[[str], User], login_client: Callable[..., Client], name: str, method: str
) -> None:
    # given
    client = login_client(persona(name))

    # when
    response = getattr(client, method)(URL)

    # then
    assert response.status_code == 403
    denied = last_event()
    assert (denied.event, denied.outcome, denied.username) == ("audit.report", "denied", name)


def test_a_forbidden_user_cannot_probe_mrns_through_the_filter(
    frontdesk: User, login_client: Callable[..., Client], patient: Patient
) -> None:
    response = login_client(frontdesk).post(URL, {"patient": patient.mrn})

    assert response.status_code == 403
    assert patient.mrn.encode() not in response.content


def test_anonymous_visitor_is_sent_to_sign_in(client: Client, db: None) -> None:
    response = client.get(URL)

    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_other_http_methods_are_not_allowed(privacy_client: Client, method: str) -> None:
    response = getattr(privacy_client, method)(URL)

    assert response.status_code == 405


# --- the page --------------------------------------------------------------------------------


def test_viewing_the_report_is_audited_as_a_query(privacy_client: Client, events: list) -> None:
    privacy_client.get(URL)

    event = last_event()
    assert (event.action, event.event, event.category) == ("query", "audit.report", "audit")
    assert event.username == "privacy"
    assert event.fields == []


def test_shows_every_column_with_local_time_and_patient(
    privacy_client: Client, privacy: User, patient: Patient, at_time, settings
) -> None:
    settings.TIME_ZONE = "America/New_York"
    # given: 15:04 UTC on 2 July is 11:04 in New York (EDT)
    at_time(dt.datetime(2026, 7, 2, 15, 4, 5, tzinfo=dt.UTC))
    record(
        actor=privacy,
        action=Action.READ,
        event="patient.view",
        category=Category.DEMOGRAPHICS,
        patient=patient,
        obj=patient,
        reason="break-glass",
    )

    # when
    response = privacy_client.get(URL)

    # then
    html = response.content.decode()
    assert "2026-07-02 11:04:05 EDT" in html
    assert "Privacy officer" in html
    assert "patient.view" in html
    assert f"{patient.mrn}</span> Okafor, Ngozi" in html
    assert f"patients.Patient</span> {patient.public_id}" in html
    assert "break-glass" in html
    assert "Success" in html


def test_every_form_field_has_a_label_and_the_first_is_autofocused(
    privacy_client: Client,
) -> None:
    html = privacy_client.get(URL).content.decode()

    for name in ("patient", "username", "action", "event", "outcome", "date_from", "date_to"):
        assert f'<label class="form-label" for="id_{name}">' in html
    assert 'name="patient"' in html.split("autofocus")[0].rsplit("<input", 1)[1]
    assert "<script>" not in html
    assert " onclick" not in html
    assert 'style="' not in html


def test_filter_form_posts_so_mrns_stay_out_of_urls(privacy_client: Client) -> None:
    html = privacy_client.get(URL).content.decode()

    assert 'id="audit-report" method="post"' in html
    assert f'hx-post="{URL}"' in html


# --- filters --------------------------------------------------------------------------------


def test_filters_by_mrn(privacy_client: Client, patient: Patient, main_clinic: Location) -> None:
    # given
    other = PatientFactory(home_location=main_clinic)
    first = add_events(2, patient=patient)
    add_events(2, patient=other)
    last = add_events(1, patient=patient)

    # when
    response = privacy_client.post(URL, {"patient": f"  {patient.mrn} "})

    # then
    assert sequences(response) == newest_first(first + last)


def test_filters_by_patient_record_id(privacy_client: Client, patient: Patient) -> None:
    made = add_events(1, patient=patient)
    add_events(1)

    response = privacy_client.post(URL, {"patient": str(patient.public_id)})

    assert sequences(response) == newest_first(made)


def test_an_mrn_kept_after_a_merge_finds_both_records_events(
    privacy_client: Client, persona: Callable[[str], User], main_clinic: Location
) -> None:
    # given: two records of one person, each with history, then merged
    survivor = PatientFactory(home_location=main_clinic)
    merged = PatientFactory(home_location=main_clinic)
    made = add_events(1, patient=survivor) + add_events(1, patient=merged)
    add_events(1)
    patient_merge(
        actor=persona("officemanager"), survivor=survivor, merged=merged, reason="same person"
    )
    merge_events = list(AuditEvent.objects.filter(event__startswith="patient.merge"))

    # when: the officer types the merged record's old MRN
    response = privacy_client.post(URL, {"patient": merged.mrn})

    # then: the history of both records (and the merge events themselves)
    assert len(merge_events) == 2
    assert sequences(response) == newest_first(made + merge_events)


def test_an_unknown_mrn_is_a_clear_error_on_the_patient_field(privacy_client: Client) -> None:
    response = privacy_client.post(URL, {"patient": "999999999"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "No patient has this MRN" in html
    assert 'class="form-control is-invalid"' in html
    assert 'id="form-errors"' in html
    assert response.context["page"] is None


def test_filters_by_username_action_event_and_outcome(privacy_client: Client, db: None) -> None:
    # given
    (a,) = add_events(1, username="amy", action=Action.READ, event="patient.view")
    (b,) = add_events(1, username="amy", action=Action.UPDATE, event="patient.update")
    (c,) = add_events(
        1, username="amy", action=Action.READ, event="patient.view", outcome=Outcome.DENIED
    )
    add_events(1, username="bob", action=Action.READ, event="patient.view")

    # when / then
    assert sequences(privacy_client.post(URL, {"username": "amy"})) == newest_first([a, b, c])
    assert sequences(privacy_client.post(URL, {"action": "update"})) == [b.sequence]
    assert sequences(privacy_client.post(URL, {"event": "patient.view", "username": "amy"})) == (
        newest_first([a, c])
    )
    assert sequences(privacy_client.post(URL, {"outcome": "denied"})) == [c.sequence]


def test_event_filter_ending_in_a_star_matches_a_prefix(privacy_client: Client, db: None) -> None:
    made = add_events(1, event="sec.lockout") + add_events(1, event="sec.login_failed")
    add_events(1, event="secure.other")
    add_events(1, event="patient.view")

    response = privacy_client.post(URL, {"event": "sec.*"})

    assert sequences(response) == newest_first(made)


def test_date_range_is_read_in_the_clinic_time_zone(
    privacy_client: Client, at_time, settings
) -> None:
    settings.TIME_ZONE = "America/New_York"
    # given: 04:30 UTC on 10 January is still 9 January in New York; 05:30 UTC is 10 January
    at_time(dt.datetime(2026, 1, 10, 4, 30, tzinfo=dt.UTC))
    (late_ninth,) = add_events(1)
    at_time(dt.datetime(2026, 1, 10, 5, 30, tzinfo=dt.UTC))
    (early_tenth,) = add_events(1)
    at_time(dt.datetime(2026, 1, 11, 5, 30, tzinfo=dt.UTC))
    (eleventh,) = add_events(1)

    def between(**dates: str) -> list[int]:
        return sequences(privacy_client.post(URL, {"event": "patient.view", **dates}))

    # when / then
    assert between(date_from="2026-01-10", date_to="2026-01-10") == [early_tenth.sequence]
    assert between(date_to="2026-01-09") == [late_ninth.sequence]
    assert between(date_from="2026-01-11") == [eleventh.sequence]


def test_an_end_date_before_the_start_date_is_an_error_on_the_end_date(
    privacy_client: Client,
) -> None:
    response = privacy_client.post(URL, {"date_from": "2026-03-10", "date_to": "2026-03-01"})

    form = response.context["form"]
    assert form.errors == {"date_to": ["The end date must be on or after the start date."]}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"date_from": "10/03/2026x"}, "date_from", "Enter a valid date."),
        ({"action": "steal"}, "action", "Select a valid choice."),
        ({"outcome": "maybe"}, "outcome", "Select a valid choice."),
        ({"sort": "password"}, "sort", "Sort by one of the report's columns."),
        ({"sort_by": "-hmac"}, "sort_by", "Sort by one of the report's columns."),
        ({"page": "abc"}, "page", "The page must be a whole number from 1 to 100000."),
        ({"page": "0"}, "page", "The page must be a whole number from 1 to 100000."),
        ({"username": "x" * 151}, "username", "Ensure this value has at most 150 characters"),
    ],
)
def test_bad_filter_input_gets_a_message_naming_the_field(
    privacy_client: Client, data: dict[str, str], field: str, message: str
) -> None:
    response = privacy_client.post(URL, data)

    assert response.status_code == 200
    assert message in response.context["form"].errors[field][0]
    label = response.context["form"].fields[field].label
    assert f"{label}</a>: " in response.content.decode() or f"{label}: " in (
        response.content.decode()
    )


def test_filter_field_names_but_not_values_go_into_the_audit_row(
    privacy_client: Client, patient: Patient
) -> None:
    # given
    add_events(1, patient=patient)

    # when
    privacy_client.post(URL, {"patient": patient.mrn, "username": "amy", "event": ""})

    # then
    event = last_event()
    assert (event.event, event.action) == ("audit.report", "query")
    assert event.fields == ["patient", "username"]
    assert event.patient_public_id == patient.public_id
    row_text = " ".join(
        str(v) for v in AuditEvent.objects.filter(pk=event.pk).values().get().values()
    )
    assert patient.mrn not in row_text
    assert "amy" not in row_text


# --- sorting and paging -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        # ties (same user, action or outcome): newest first, and the reverse when descending
        ("user", [4, 2, 3, 1]),
        ("-user", [1, 3, 2, 4]),
        ("sequence", [1, 2, 3, 4]),
        ("-sequence", [4, 3, 2, 1]),
        ("time", [1, 2, 3, 4]),
        ("-time", [4, 3, 2, 1]),
        ("action", [3, 1, 2, 4]),
        ("-action", [4, 2, 1, 3]),
        ("event", [1, 3, 2, 4]),
        ("-event", [4, 2, 3, 1]),
        ("outcome", [3, 1, 4, 2]),
        ("-outcome", [2, 4, 1, 3]),
    ],
)
def test_sorts_by_an_allow_listed_column(
    privacy_client: Client, db: None, sort: str, expected: list[int]
) -> None:
    # given: four events, numbered 1..4 in the order they were written
    made = [
        *add_events(1, username="zed", action="create", event="t.a", outcome=Outcome.DENIED),
        *add_events(1, username="amy", action=Action.READ, event="t.c"),
        *add_events(1, username="zed", action="create", event="t.b", outcome=Outcome.DENIED),
        *add_events(1, username="amy", action=Action.UPDATE, event="t.d"),
    ]

    # when
    response = privacy_client.post(URL, {"event": "t.*", "sort_by": sort})

    # then
    assert sequences(response) == [made[n - 1].sequence for n in expected]
    assert response.context["page"].sort == sort


def test_a_column_heading_toggles_its_direction(privacy_client: Client, events: list) -> None:
    html = privacy_client.post(URL, {"sort": "user"}).content.decode()

    assert 'aria-sort="ascending"><button type="submit" name="sort_by" value="-user"' in html
    assert 'name="sort_by" value="-time"' in html
    assert '<input type="hidden" name="sort" value="user">' in html


def test_pages_hold_fifty_events_and_know_whether_more_follow(
    privacy_client: Client, db: None
) -> None:
    # given
    made = newest_first(add_events(PAGE_SIZE + 3))

    # when
    first = privacy_client.post(URL, {"event": "patient.view"})
    second = privacy_client.post(URL, {"event": "patient.view", "page": "2"})

    # then
    assert sequences(first) == made[:PAGE_SIZE]
    assert first.context["page"].has_next
    assert 'name="page" value="2"' in first.content.decode()
    assert sequences(second) == made[PAGE_SIZE:]
    assert not second.context["page"].has_next
    assert 'name="page" value="1"' in second.content.decode()
    assert 'name="page" value="3"' not in second.content.decode()


def test_sorting_keeps_the_filters_and_starts_again_at_page_one(
    privacy_client: Client, db: None
) -> None:
    made = add_events(PAGE_SIZE + 1, username="amy")
    add_events(1, username="bob")

    response = privacy_client.post(URL, {"username": "amy", "page": "2", "sort_by": "sequence"})

    assert response.context["page"].page == 1
    assert sequences(response) == [e.sequence for e in made[:PAGE_SIZE]]
    assert "bob" not in {row.event.username for row in response.context["page"].rows}


def test_pages_are_fetched_without_counting_the_table(privacy_client: Client, events: list) -> None:
    with CaptureQueriesContext(connection) as queries:
        privacy_client.post(URL, {"page": "1"})

    audit_selects = [
        q["sql"] for q in queries.captured_queries if 'FROM "audit_auditevent"' in q["sql"]
    ]
    assert not any("COUNT(" in sql.upper() for sql in audit_selects)
    assert any(f"LIMIT {PAGE_SIZE + 1}" in sql for sql in audit_selects)


def test_patients_are_looked_up_in_one_query_per_page(
    privacy_client: Client, main_clinic: Location, django_assert_max_num_queries
) -> None:
    # given: events about 3 patients, then about 30 more
    few = PatientFactory.create_batch(3, home_location=main_clinic)
    for p in few:
        add_events(1, patient=p)
    with CaptureQueriesContext(connection) as baseline:
        privacy_client.post(URL, {})
    for p in PatientFactory.create_batch(30, home_location=main_clinic):
        add_events(1, patient=p)

    # when / then: same number of queries for 33 patients as for 3
    with django_assert_max_num_queries(len(baseline.captured_queries)):
        response = privacy_client.post(URL, {})
    assert len([row for row in response.context["page"].rows if row.patient]) == 33


# --- htmx -------------------------------------------------------------------------------------


def test_htmx_post_renders_only_the_results_table(privacy_client: Client) -> None:
    made = add_events(3)

    response = privacy_client.post(URL, {"page": "1", "event": "patient.view"}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="audit-results"')
    assert "<html" not in html
    assert sequences(response) == newest_first(made)


def test_htmx_post_with_bad_filters_swaps_the_whole_form_with_its_errors(
    privacy_client: Client,
) -> None:
    response = privacy_client.post(URL, {"patient": "nope"}, **HTMX)

    assert response.status_code == 200
    assert response["HX-Retarget"] == "#audit-report"
    assert response["HX-Reswap"] == "outerHTML"
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="audit-report"')
    assert "No patient has this MRN" in html
