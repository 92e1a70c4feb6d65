"""`manage.py ar_aging`: the documented JSON shape, the options, and the audit of PHI."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import Action, AuditEvent
from billing.models import ClaimStatus
from billing.tests.factories import ClaimFactory, EncounterFactory, PayerFactory
from patientaccounts.tests.factories import post_charge
from receivables.aging import local_day_start
from receivables.tests.conftest import set_status

pytestmark = pytest.mark.django_db
AS_OF = dt.date(2026, 11, 23)


@pytest.fixture
def claim(main_clinic):
    claim = ClaimFactory(
        payer=PayerFactory(name="Aetna", payer_id="60054"),
        encounter=EncounterFactory(
            location=main_clinic, date_of_service=AS_OF - dt.timedelta(days=95)
        ),
        lines=2,
    )
    set_status(
        claim, ClaimStatus.SUBMITTED, submitted_at=local_day_start(AS_OF - dt.timedelta(days=10))
    )
    post_charge(claim.patient, "25.00", service_date=AS_OF - dt.timedelta(days=50))
    return claim


def run(*args: str) -> str:
    out = StringIO()
    call_command("ar_aging", *args, stdout=out)
    return out.getvalue()


def test_json_by_payer_has_the_documented_shape(claim):
    data = json.loads(run("--json", "--as-of", "2026-11-23"))
    assert data == {
        "as_of": "2026-11-23",
        "basis": "service",
        "by": "payer",
        "buckets": ["0-30", "31-60", "61-90", "91-120", "120+"],
        "rows": [
            {
                "key": str(claim.payer_id),
                "name": "Aetna",
                "0-30": "0.00",
                "31-60": "0.00",
                "61-90": "0.00",
                "91-120": "201.00",
                "120+": "0.00",
                "insurance": "201.00",
                "patient": "0.00",
                "total": "201.00",
            },
            {
                "key": "patient-responsibility",
                "name": "Patient responsibility",
                "0-30": "0.00",
                "31-60": "25.00",
                "61-90": "0.00",
                "91-120": "0.00",
                "120+": "0.00",
                "insurance": "0.00",
                "patient": "25.00",
                "total": "25.00",
            },
        ],
        "totals": {
            "0-30": "0.00",
            "31-60": "25.00",
            "61-90": "0.00",
            "91-120": "201.00",
            "120+": "0.00",
            "insurance": "201.00",
            "patient": "25.00",
            "total": "226.00",
        },
    }


def test_json_by_patient_on_the_submission_basis_is_audited_as_an_export(claim):
    data = json.loads(
        run("--json", "--by", "patient", "--basis", "submission", "--as-of", "2026-11-23")
    )
    assert data["by"] == "patient"
    assert data["basis"] == "submission"
    [row] = data["rows"]
    assert row["key"] == str(claim.patient.public_id)
    assert row["mrn"] == claim.patient.mrn
    assert (row["0-30"], row["31-60"], row["total"]) == ("201.00", "25.00", "226.00")
    event = AuditEvent.objects.get(event="receivables.aging_patient.export")
    assert event.action == Action.EXPORT
    assert claim.patient.mrn not in event.reason


def test_as_user_limits_the_report_to_their_locations(claim, riverside, persona):
    from accounts.tests.factories import UserFactory

    UserFactory(username="riverbilling", roles=["billing_specialist"], locations=[riverside])
    persona("billing")
    mine = json.loads(run("--json", "--user", "billing", "--as-of", "2026-11-23"))
    theirs = json.loads(run("--json", "--user", "riverbilling", "--as-of", "2026-11-23"))
    assert mine["totals"]["total"] == "226.00"
    assert theirs["rows"] == []


def test_as_user_without_billing_access_cannot_list_patients(persona):
    persona("servicedirector")
    with pytest.raises(CommandError, match="--user"):
        run("--json", "--by", "patient", "--user", "servicedirector")


def test_bad_as_of_date_names_the_option():
    with pytest.raises(CommandError, match="--as-of"):
        run("--as-of", "23/11/2026")


def test_unknown_user_names_the_option():
    with pytest.raises(CommandError, match="--user"):
        run("--user", "nobody")


def test_table_output_lists_payers_and_the_total(claim):
    text = run("--as-of", "2026-11-23")
    assert "Aetna" in text
    assert "Patient responsibility" in text
    assert text.strip().splitlines()[-1].split()[-1] == "226.00"
