"""manage.py ingest_835 over every shared 835 fixture: figures that match the segments.

Expected figures are counted from the raw text here (split on '~' and '*'), not by the parser.
"""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from billing.models import ClaimStatus
from remittance.models import (
    AdjustmentLevel,
    ClaimRemittance,
    FileStatus,
    RemittanceAdjustment,
    RemittanceFile,
    UnmatchedRemittance,
)

DATA = Path(__file__).resolve().parent / "data" / "835"
FIXTURES = sorted(DATA.glob("*.835"))


def raw(path: Path) -> dict[str, Any]:
    bpr: list[Decimal] = []
    clps: list[list[str]] = []
    claim_cas: list[tuple[str, str, Decimal]] = []
    line_cas: list[tuple[str, str, Decimal]] = []
    payers: list[str] = []
    traces: list[str] = []
    in_line = False
    for piece in path.read_text().split("~"):
        element = piece.strip().split("*")
        tag = element[0]
        if tag == "BPR":
            bpr.append((-1 if element[3] == "D" else 1) * Decimal(element[2]))
        elif tag == "TRN":
            traces.append(element[2])
        elif tag == "N1" and element[1] == "PR":
            payers.append(element[2])
        elif tag == "CLP":
            clps.append(element)
            in_line = False
        elif tag == "SVC":
            in_line = True
        elif tag == "CAS":
            for n in range(2, len(element), 3):
                if element[n]:
                    triplet = (element[1], element[n], Decimal(element[n + 1]))
                    (line_cas if in_line else claim_cas).append(triplet)
    return {
        "bpr": bpr,
        "clps": clps,
        "claim_cas": claim_cas,
        "line_cas": line_cas,
        "payers": payers,
        "traces": traces,
    }


def run(*args: str) -> tuple[dict, str]:
    out, err = StringIO(), StringIO()
    call_command("ingest_835", *args, "--json", stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_every_fixture_ingests_with_figures_that_match_its_segments(path):
    # given
    expected = raw(path)
    clps = expected["clps"]
    # when
    result, _err = run(str(path))
    # then the JSON report
    assert result["files"] == 1
    assert result["claims"] == len(clps)
    assert result["total_paid"] == str(sum(Decimal(c[4]) for c in clps))
    all_cas = expected["claim_cas"] + expected["line_cas"]
    assert Decimal(result["total_adjusted"]) == sum(t[2] for t in all_cas)
    assert (result["matched"], result["unmatched"]) == (0, len(clps))
    assert [p["trace"] for p in result["payments"]] == expected["traces"]
    assert [p["payer"] for p in result["payments"]] == expected["payers"]
    assert [Decimal(p["paid"]) for p in result["payments"]] == expected["bpr"]
    assert sum(expected["bpr"]) == sum(Decimal(c[4]) for c in clps)  # no PLB in the fixtures
    assert result["claim_details"] == [
        {
            "patient_control_number": c[1],
            "status_code": c[2],
            "charge": c[3],
            "paid": c[4],
            "patient_responsibility": c[5] if len(c) > 5 and c[5] else "0",
        }
        for c in clps
    ]
    # and the stored rows: every CAS triplet at its level, every claim payment queued
    stored = RemittanceAdjustment.objects.order_by("claim_remittance__position", "line", "id")
    claim_level = [
        (a.group_code, a.reason_code, a.amount) for a in stored if a.level == AdjustmentLevel.CLAIM
    ]
    line_level = [
        (a.group_code, a.reason_code, a.amount) for a in stored if a.level == AdjustmentLevel.LINE
    ]
    assert claim_level == expected["claim_cas"]
    assert line_level == expected["line_cas"]
    assert UnmatchedRemittance.objects.count() == len(clps)
    assert RemittanceFile.objects.get().status == FileStatus.POSTED


@pytest.mark.django_db
def test_denied_claims_of_the_fixtures_are_counted():
    result, _ = run(*map(str, FIXTURES))
    # emedny claim 2 (paid 0, CO-29) and the pyx12 full denial (CLP02 = 4)
    assert result["denied"] == 2
    assert result["files"] == len(FIXTURES)
    assert result["claims"] == 9


@pytest.mark.django_db
def test_managed_care_fixture_posts_to_our_claims_matched_by_control_number(make_claim):
    # given our two claims under the fixture's patient control numbers
    first = make_claim("5554555444", charges=("800.00",), codes=("99211",))
    second = make_claim("8765432112", charges=("1200.00",), codes=("93555",))
    # when
    result, _ = run(str(DATA / "lfh_managed-care.835"))
    # then
    assert (result["matched"], result["unmatched"]) == (2, 0)
    for claim in (first, second):
        claim.refresh_from_db()
        assert claim.status == ClaimStatus.PAID
    assert (first.paid_amount, first.patient_responsibility) == (Decimal("450"), Decimal("300"))
    assert ClaimRemittance.objects.filter(match_method="pcn").count() == 2


@pytest.mark.django_db
def test_dry_run_reports_without_posting():
    result, err = run("--dry-run", str(DATA / "emedny_sample.835"))
    assert result["claims"] == 3
    assert "dry run" in err
    assert not RemittanceFile.objects.exists()


@pytest.mark.django_db
def test_second_run_of_the_same_file_reports_already_posted_and_adds_nothing():
    run(str(DATA / "emedny_sample.835"))
    result, err = run(str(DATA / "emedny_sample.835"))
    assert "already posted" in err
    assert result["claims"] == 0
    assert ClaimRemittance.objects.count() == 3


@pytest.mark.django_db
def test_a_failing_file_is_reported_and_the_others_go_on(tmp_path):
    # given one unbalanced file between two good ones
    bad = tmp_path / "bad.835"
    bad.write_text((DATA / "emedny_sample.835").read_text().replace("BPR*I*45.75", "BPR*I*45.70"))
    paths = [str(DATA / "lfh_managed-care.835"), str(bad), str(DATA / "lfh_tertiary-payment.835")]
    out, err = StringIO(), StringIO()
    # when
    with pytest.raises(CommandError, match="1 of 3 file"):
        call_command("ingest_835", *paths, "--json", stdout=out, stderr=err)
    # then
    result = json.loads(out.getvalue())
    assert result["claims"] == 3
    assert "bad.835: segment 4 (BPR) BPR02: the payment does not balance" in err.getvalue()
    assert RemittanceFile.objects.filter(status=FileStatus.POSTED).count() == 2
    assert RemittanceFile.objects.filter(status=FileStatus.REFUSED).count() == 1


@pytest.mark.django_db
def test_an_unreadable_path_is_reported(tmp_path):
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError):
        call_command("ingest_835", str(tmp_path / "missing.835"), stdout=out, stderr=err)
    assert "cannot be read" in err.getvalue()
