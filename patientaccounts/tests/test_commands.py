from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from patientaccounts.models import Statement, StatementRun
from patientaccounts.tests.factories import post_charge
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def test_run_statements_makes_one_statement_per_patient_with_a_balance_and_prints_json(
    main_clinic, riverside
):
    # given
    owing = [PatientFactory(home_location=main_clinic), PatientFactory(home_location=riverside)]
    for p in owing:
        post_charge(p, "45.00")
    post_charge(PatientFactory(home_location=main_clinic), "45.00", to_patient=False)
    out = StringIO()
    # when
    call_command("run_statements", "--json", "--date", "2026-11-30", stdout=out, stderr=StringIO())
    # then
    result = json.loads(out.getvalue())
    assert result["statement_date"] == "2026-11-30"
    assert result["total"] == result["statements"] == 2
    assert set(Statement.objects.values_list("patient_id", flat=True)) == {p.pk for p in owing}
    assert StatementRun.objects.get().status == "done"
    assert AuditEvent.objects.filter(event="statement.generate", username="system").count() == 2


def test_run_statements_rerun_on_the_same_date_makes_no_duplicates(main_clinic):
    post_charge(PatientFactory(home_location=main_clinic), "45.00")
    call_command("run_statements", "--location", "main", stdout=StringIO(), stderr=StringIO())
    call_command("run_statements", "--location", "main", stdout=StringIO(), stderr=StringIO())
    assert Statement.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--date", "30/11/2026"], "--date"), (["--location", "nowhere"], "--location")],
)
def test_run_statements_refuses_bad_options_with_a_clear_message(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("run_statements", *args, stdout=StringIO(), stderr=StringIO())
