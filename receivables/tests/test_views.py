"""The receivables screens: access matrix (allowed, lesser role, other location, anonymous,
wrong method), audit of PHI reads and exports, input errors, htmx partials and query counts."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from audit.models import Action, AuditEvent, Outcome
from billing.tests.factories import ClaimFactory, EncounterFactory, PayerFactory
from patientaccounts.tests.factories import post_charge

pytestmark = pytest.mark.django_db

AGING = reverse("receivables:aging")
CSV = reverse("receivables:aging_csv")
KPIS = reverse("receivables:kpis")


@pytest.fixture
def outstanding(main_clinic, riverside):
    """Main Street: an Aetna claim of 100 (40 days old) and a patient balance of 35.
    Riverside: a claim of 100 for a Riverside patient."""
    today = timezone.localdate()
    aetna = PayerFactory(name="Aetna")
    claim = ClaimFactory(
        payer=aetna,
        encounter=EncounterFactory(
            location=main_clinic, date_of_service=today - dt.timedelta(days=40)
        ),
    )
    post_charge(claim.patient, "35.00", service_date=today - dt.timedelta(days=3))
    ClaimFactory(
        payer=PayerFactory(name="Riverside Mutual"),
        encounter=EncounterFactory(location=riverside, date_of_service=today),
    )
    return claim


def _riverside_billing(riverside):
    return UserFactory(username="riverbilling", roles=["billing_specialist"], locations=[riverside])


# --- aging by payer -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["billing", "servicedirector"])
def test_payer_aging_is_shown_to_revenue_report_roles(persona, login_client, outstanding, name):
    response = login_client(persona(name)).get(AGING)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Aetna" in body
    assert "Patient responsibility" in body
    assert "135.00" in body  # 100 insurance + 35 patient
    assert "Riverside Mutual" not in body  # another location's claims


def test_payer_aging_is_refused_to_the_front_desk(frontdesk, login_client, outstanding):
    response = login_client(frontdesk).get(AGING)
    assert response.status_code == 403
    assert AuditEvent.objects.filter(
        event="auth.permission_denied", user=frontdesk, outcome=Outcome.DENIED
    ).exists()


def test_a_user_at_another_location_sees_none_of_main_streets_receivables(
    riverside, login_client, outstanding
):
    response = login_client(_riverside_billing(riverside)).get(AGING)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Aetna" not in body
    assert "Riverside Mutual" in body


def test_anonymous_users_are_sent_to_sign_in(client):
    for url in (AGING, CSV, KPIS):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("accounts:login") in response["Location"]


@pytest.mark.parametrize("url", [AGING, CSV, KPIS])
def test_reports_answer_405_to_a_post(persona, login_client, url):
    assert login_client(persona("billing")).post(url).status_code == 405


def test_bad_as_of_date_is_named_in_the_error_and_answers_400(persona, login_client):
    response = login_client(persona("billing")).get(AGING, {"as_of": "2026-02-30"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "As of" in body
    assert "Enter a valid date" in body
    assert "is-invalid" in body


def test_unknown_choice_is_refused_with_the_field_named(persona, login_client):
    response = login_client(persona("billing")).get(AGING, {"by": "ssn"})
    assert response.status_code == 400
    assert "Group by" in response.content.decode()


def test_htmx_switch_answers_with_the_report_partial(persona, login_client, outstanding):
    response = login_client(persona("billing")).get(
        AGING, {"basis": "submission"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert "aged from the date of submission" in body
    assert "data-chart-spec=" in body


def test_payer_aging_page_runs_a_fixed_number_of_queries(
    persona, login_client, outstanding, django_assert_max_num_queries
):
    # given: more claims for more payers do not add queries
    for index in range(5):
        ClaimFactory(payer=PayerFactory(name=f"Payer {index}"), encounter=outstanding.encounter)
    client = login_client(persona("billing"))
    client.get(AGING)  # warm the session and role caches
    with django_assert_max_num_queries(12):
        response = client.get(AGING)
    assert response.status_code == 200


# --- aging by patient (PHI) -----------------------------------------------------------------


def test_patient_aging_lists_mrns_for_billing_and_is_audited_as_a_query(
    persona, login_client, outstanding
):
    user = persona("billing")
    response = login_client(user).get(AGING, {"by": "patient"})
    assert response.status_code == 200
    assert outstanding.patient.mrn in response.content.decode()
    event = AuditEvent.objects.get(event="receivables.aging_patient", user=user)
    assert event.action == Action.QUERY
    assert outstanding.patient.mrn not in (event.object_id + event.reason)


def test_patient_aging_needs_billing_access_beyond_revenue_reports(persona, login_client):
    # the service director sees revenue figures but no patient accounts
    response = login_client(persona("servicedirector")).get(AGING, {"by": "patient"})
    assert response.status_code == 403


def test_patient_aging_is_refused_to_the_front_desk(frontdesk, login_client):
    assert login_client(frontdesk).get(AGING, {"by": "patient"}).status_code == 403


def test_patient_aging_page_runs_a_fixed_number_of_queries(
    persona, login_client, outstanding, django_assert_max_num_queries
):
    for _ in range(5):
        ClaimFactory(encounter=EncounterFactory(location=outstanding.encounter.location))
    client = login_client(persona("billing"))
    client.get(AGING, {"by": "patient"})
    with django_assert_max_num_queries(15):
        response = client.get(AGING, {"by": "patient"})
    assert response.content.decode().count("<tr>") >= 6


# --- CSV export -----------------------------------------------------------------------------


def test_csv_export_has_every_row_and_the_totals_and_is_audited(persona, login_client, outstanding):
    user = persona("billing")
    response = login_client(user).get(CSV, {"by": "patient", "basis": "service"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "MRN",
        "Patient",
        "0-30",
        "31-60",
        "61-90",
        "91-120",
        "120+",
        "Insurance",
        "Patient responsibility",
        "Total",
    ]
    assert rows[1][0] == outstanding.patient.mrn
    assert rows[1][2:] == ["35.00", "100.00", "0.00", "0.00", "0.00", "100.00", "35.00", "135.00"]
    assert rows[-1][1] == "Total"
    event = AuditEvent.objects.get(event="receivables.aging_patient.export", user=user)
    assert event.action == Action.EXPORT


def test_payer_csv_export_for_the_service_director(persona, login_client, outstanding):
    response = login_client(persona("servicedirector")).get(CSV)
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert [row[0] for row in rows] == ["Payer", "Aetna", "Patient responsibility", "Total"]
    assert Decimal(rows[-1][-1]) == Decimal("135.00")


def test_csv_export_is_refused_to_the_front_desk(frontdesk, login_client):
    assert login_client(frontdesk).get(CSV).status_code == 403


def test_csv_export_of_patients_is_refused_to_the_service_director(persona, login_client):
    assert login_client(persona("servicedirector")).get(CSV, {"by": "patient"}).status_code == 403


def test_csv_export_with_a_bad_date_answers_400(persona, login_client):
    assert login_client(persona("billing")).get(CSV, {"as_of": "yesterday"}).status_code == 400


# --- KPIs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["billing", "servicedirector"])
def test_kpi_page_shows_each_kpi_with_its_definition(persona, login_client, outstanding, name):
    response = login_client(persona(name)).get(KPIS)
    assert response.status_code == 200
    body = response.content.decode()
    for title in ("Days in A/R", "Denial rate", "Clean-claim (first-pass) rate"):
        assert title in body
    assert "Net collection rate" in body
    assert "payments ÷ (gross charges - contractual adjustments)" in body
    assert "data-chart-spec=" in body


def test_kpi_page_is_refused_to_the_front_desk(frontdesk, login_client):
    assert login_client(frontdesk).get(KPIS).status_code == 403


def test_kpi_period_that_ends_before_it_starts_is_named(persona, login_client):
    response = login_client(persona("billing")).get(
        KPIS, {"start": "2026-09-30", "end": "2026-09-01"}
    )
    assert response.status_code == 400
    assert "The period must end on or after its start." in response.content.decode()


def test_kpi_period_longer_than_two_years_is_refused(persona, login_client):
    response = login_client(persona("billing")).get(
        KPIS, {"start": "2020-01-01", "end": "2026-09-01"}
    )
    assert response.status_code == 400
    assert "at most 731 days" in response.content.decode()


def test_kpi_page_runs_a_fixed_number_of_queries(
    persona, login_client, outstanding, django_assert_max_num_queries
):
    client = login_client(persona("billing"))
    client.get(KPIS)
    with django_assert_max_num_queries(18):
        assert client.get(KPIS).status_code == 200
