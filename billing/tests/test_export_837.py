"""claims_export_837 and `manage.py export_837`: validated 837P files per payer."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from billing.export import ExportError, claims_export_837, split_name
from billing.models import (
    BatchStatus,
    Claim,
    ClaimBatch,
    ClaimEvent,
    ClaimLine,
    ClaimPriorAdjustment,
    ClaimPriorPayment,
    ClaimStatus,
)
from billing.tests.factories import ClaimFactory, PayerFactory
from billing.x12.validate import validate_837

pytestmark = pytest.mark.django_db


def ready_claim(**kwargs) -> Claim:
    kwargs.setdefault("lines", 2)
    return ClaimFactory(status=ClaimStatus.READY, **kwargs)


def segments(text: str) -> list[list[str]]:
    return [part.split("*") for part in text.split("~") if part.strip()]


def test_exports_one_validated_file_per_payer_and_marks_the_claims_submitted(tmp_path):
    # given
    acme, prairie = PayerFactory(payer_id="ACME1"), PayerFactory(payer_id="PRAIRIE9")
    acme_claims = [ready_claim(payer=acme) for _ in range(3)]
    prairie_claim = ready_claim(payer=prairie)
    draft = ClaimFactory(payer=acme, status=ClaimStatus.DRAFT)

    # when
    result = claims_export_837(actor=None, out_dir=tmp_path)

    # then
    assert [f.payer_id for f in result.files] == ["ACME1", "PRAIRIE9"]
    assert result.claims == 4
    assert result.total_charge == Decimal("804.00")  # 4 claims x (100 + 101)
    for exported in result.files:
        assert exported.released
        text = exported.path.read_text()
        assert validate_837(text).ok
    acme_text = result.files[0].path.read_text()
    assert len([s for s in segments(acme_text) if s[0] == "CLM"]) == 3
    for claim in [*acme_claims, prairie_claim]:
        claim.refresh_from_db()
        assert claim.status == ClaimStatus.SUBMITTED
        assert claim.batch is not None
        assert claim.submitted_at is not None
    draft.refresh_from_db()
    assert draft.status == ClaimStatus.DRAFT


def test_released_batch_keeps_the_file_its_hash_and_is_audited(tmp_path):
    # given
    claim = ready_claim()

    # when
    result = claims_export_837(actor=None, out_dir=tmp_path)

    # then
    batch = ClaimBatch.objects.get()
    assert batch.status == BatchStatus.RELEASED
    assert batch.content == result.files[0].path.read_text()
    assert len(batch.sha256) == 64
    assert batch.claim_count == 1
    assert batch.total_charge == Decimal("201.00")
    event = ClaimEvent.objects.get(claim=claim, to_status=ClaimStatus.SUBMITTED)
    assert event.from_status == ClaimStatus.READY
    assert AuditEvent.objects.filter(event="claim_batch.released").count() == 1
    assert (
        AuditEvent.objects.filter(event="claim.status", patient_public_id=claim.patient.public_id)
        .filter(reason="ready -> submitted")
        .count()
        == 1
    )


def test_control_numbers_never_repeat_across_exports(tmp_path):
    # given
    ready_claim()
    first = claims_export_837(actor=None, out_dir=tmp_path)
    ready_claim()

    # when
    second = claims_export_837(actor=None, out_dir=tmp_path)

    # then
    numbers = list(ClaimBatch.objects.values_list("interchange_control_number", flat=True))
    assert len(set(numbers)) == 2
    isa13 = [segments(r.files[0].path.read_text())[0][13] for r in (first, second)]
    assert isa13[0] != isa13[1]


def test_exports_only_the_payer_asked_for(tmp_path):
    # given
    acme, other = PayerFactory(payer_id="ACME1"), PayerFactory(payer_id="OTHER")
    ready_claim(payer=acme)
    left = ready_claim(payer=other)

    # when
    result = claims_export_837(actor=None, payer=acme, out_dir=tmp_path)

    # then
    assert [f.payer_id for f in result.files] == ["ACME1"]
    left.refresh_from_db()
    assert left.status == ClaimStatus.READY


def test_dependent_patient_is_written_under_the_subscriber(tmp_path):
    # given
    ready_claim(
        coverage__relationship="child",
        coverage__subscriber_name="Pat Q Testperson",
        coverage__subscriber_birth_date=dt.date(1975, 3, 4),
    )

    # when
    result = claims_export_837(actor=None, out_dir=tmp_path)

    # then
    parsed = segments(result.files[0].path.read_text())
    assert ["PAT", "19"] in parsed
    subscriber = next(s for s in parsed if s[:2] == ["NM1", "IL"])
    assert subscriber[3:5] == ["TESTPERSON", "PAT Q"]
    assert [s[3] for s in parsed if s[0] == "HL"] == ["20", "22", "23"]


def test_replacement_claim_carries_the_payer_claim_number_of_the_original(tmp_path):
    # given
    original = ClaimFactory(status=ClaimStatus.DENIED, payer_claim_number="ICN-7781")
    ready_claim(
        encounter=original.encounter,
        payer=original.payer,
        coverage=original.coverage,
        frequency_code="7",
        replaces=original,
    )

    # when
    result = claims_export_837(actor=None, out_dir=tmp_path)

    # then
    parsed = segments(result.files[0].path.read_text())
    assert next(s for s in parsed if s[0] == "CLM")[5] == "11:B:7"
    assert ["REF", "F8", "ICN7781"] in parsed


def test_secondary_claim_carries_the_primary_payment_and_adjustments(tmp_path):
    # given
    primary_payer = PayerFactory(payer_id="PRIME1")
    primary = ClaimFactory(payer=primary_payer, status=ClaimStatus.PAID, lines=2)
    secondary_payer = PayerFactory(payer_id="SECOND2")
    claim = ready_claim(
        encounter=primary.encounter,
        payer=secondary_payer,
        sequence="S",
        coverage__order=2,
    )
    paid_on = timezone.localdate() - dt.timedelta(days=1)
    ClaimPriorPayment.objects.create(
        claim=claim, source_claim=primary, payer=primary_payer, amount=Decimal("120.00"),
        paid_date=paid_on,
    )  # fmt: skip
    for line in claim.lines.all():
        ClaimPriorPayment.objects.create(
            claim=claim, claim_line=line, source_claim=primary, payer=primary_payer,
            amount=Decimal("60.00"), paid_units=Decimal(1), paid_date=paid_on,
        )  # fmt: skip
        for reason in ("45", "253", "59", "97", "131", "94", "23"):  # 7 triplets: two CAS
            ClaimPriorAdjustment.objects.create(
                claim=claim, claim_line=line, payer=primary_payer, group_code="CO",
                reason_code=reason, amount=Decimal("2.00"),
            )  # fmt: skip
    ClaimPriorAdjustment.objects.create(
        claim=claim, payer=primary_payer, group_code="PR", reason_code="2", amount=Decimal("20")
    )

    # when
    result = claims_export_837(actor=None, payer=secondary_payer, out_dir=tmp_path)

    # then
    assert result.files[0].released
    parsed = segments(result.files[0].path.read_text())
    sbrs = [s for s in parsed if s[0] == "SBR"]
    assert sbrs[0][1] == "S"
    assert sbrs[1][1:3] == ["P", "18"]
    assert ["CAS", "PR", "2", "20"] in parsed
    assert ["AMT", "D", "120"] in parsed
    assert len([s for s in parsed if s[0] == "SVD"]) == 2
    assert len([s for s in parsed if s[:2] == ["CAS", "CO"]]) == 4


def test_a_claim_missing_what_the_837_needs_is_skipped_and_stays_ready(tmp_path):
    # given
    good = ready_claim()
    bad = ready_claim(payer=good.payer, encounter__patient__address_line1="")

    # when
    result = claims_export_837(actor=None, out_dir=tmp_path)

    # then
    assert result.claims == 1
    assert result.skipped == [
        (bad.patient_control_number, "the patient's address (street, city, state, ZIP) is "
         "incomplete"),
    ]  # fmt: skip
    bad.refresh_from_db()
    assert bad.status == ClaimStatus.READY


def test_a_file_pyx12_rejects_is_not_released_and_its_claims_stay_ready(tmp_path):
    # given: a birth date pyx12 refuses (before 1800) that the mapping lets through
    claim = ready_claim(encounter__patient__birth_date=dt.date(1700, 1, 1))

    # when
    result = claims_export_837(actor=None, out_dir=tmp_path)

    # then
    assert result.claims == 0
    assert len(result.failed) == 1
    assert result.failed[0].errors
    assert list(tmp_path.iterdir()) == []
    batch = ClaimBatch.objects.get()
    assert batch.status == BatchStatus.FAILED
    assert batch.validation_errors == result.failed[0].errors
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.READY
    assert AuditEvent.objects.filter(event="claim_batch.failed", outcome="failure").count() == 1


def test_a_claim_changed_while_the_file_was_built_is_left_out_and_the_rest_released(
    tmp_path, monkeypatch
):
    # given: another user sends claim b back to draft while the first file is being validated
    from billing import export

    a = ready_claim()
    b = ready_claim(payer=a.payer)
    real_validate = export.validate_837
    calls: list[str] = []

    def validate_while_someone_edits(text):
        if not calls:
            Claim.objects.filter(pk=b.pk).update(
                status=ClaimStatus.DRAFT, updated_at=timezone.now()
            )
        calls.append(text)
        return real_validate(text)

    monkeypatch.setattr(export, "validate_837", validate_while_someone_edits)

    # when
    result = claims_export_837(actor=None, out_dir=tmp_path)

    # then
    assert len(calls) == 2
    assert result.claims == 1
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.status, b.status) == (ClaimStatus.SUBMITTED, ClaimStatus.DRAFT)
    assert b.patient_control_number not in result.files[0].path.read_text()
    assert ClaimBatch.objects.count() == 1


def test_a_claim_that_left_ready_while_its_lines_were_read_is_not_reported_as_skipped(
    tmp_path, monkeypatch
):
    # given: claim b goes back to draft right after the claims were read, before their lines
    from billing import export

    a = ready_claim()
    b = ready_claim(payer=a.payer)
    real_ready_rows = export._ready_rows
    reads: list[int] = []

    def read_then_someone_edits(payer):
        rows = real_ready_rows(payer)
        if not reads:
            Claim.objects.filter(pk=b.pk).update(
                status=ClaimStatus.DRAFT, updated_at=timezone.now()
            )
        reads.append(len(rows))
        return rows

    monkeypatch.setattr(export, "_ready_rows", read_then_someone_edits)

    # when
    result = claims_export_837(actor=None, out_dir=tmp_path)

    # then: b's lines were fetched by id, the lock check saw the change and the export
    # started over without b
    assert reads == [2, 1]
    assert result.skipped == []
    assert result.claims == 1
    b.refresh_from_db()
    assert b.status == ClaimStatus.DRAFT
    assert b.patient_control_number not in result.files[0].path.read_text()


def test_equal_lines_of_different_claims_are_each_written_with_their_exact_amounts(tmp_path):
    # given: two claims with the same two lines, one with cents and fractional units
    payer = PayerFactory(payer_id="SAME1")
    claims = [ready_claim(payer=payer) for _ in range(2)]
    ClaimLine.objects.filter(claim__in=claims, line_number=2).update(
        charge=Decimal("40.50"), units=Decimal("1.500")
    )
    Claim.objects.filter(pk__in=[c.pk for c in claims]).update(total_charge=Decimal("140.50"))

    # when
    result = claims_export_837(actor=None, out_dir=tmp_path)

    # then
    parsed = segments(result.files[0].path.read_text())
    assert [s[2] for s in parsed if s[0] == "CLM"] == ["140.5", "140.5"]
    assert [s[1:3] + s[4:5] for s in parsed if s[0] == "SV1"] == [
        ["HC:99213", "100", "1"],
        ["HC:85025", "40.5", "1.5"],
    ] * 2
    assert [s[1] for s in parsed if s[0] == "LX"] == ["1", "2", "1", "2"]


def test_reads_claims_with_a_fixed_number_of_queries(tmp_path):
    # given
    payer = PayerFactory(payer_id="Q1")
    ready_claim(payer=payer)
    claims_export_837(actor=None, out_dir=tmp_path)  # creates the counter row
    ready_claim(payer=payer)
    with CaptureQueriesContext(connection) as one:
        claims_export_837(actor=None, out_dir=tmp_path)
    for _ in range(6):
        ready_claim(payer=payer)

    # when
    with CaptureQueriesContext(connection) as six:
        claims_export_837(actor=None, out_dir=tmp_path)

    # then
    assert len(six.captured_queries) == len(one.captured_queries)


def test_refuses_an_output_folder_that_does_not_exist(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        claims_export_837(actor=None, out_dir=tmp_path / "missing")


def test_progress_reaches_the_total(tmp_path):
    # given
    for _ in range(3):
        ready_claim()
    calls = []

    # when
    claims_export_837(actor=None, out_dir=tmp_path, progress=lambda d, t: calls.append((d, t)))

    # then
    assert calls[-1] == (3, 3)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Smith, Jane", ("Smith", "Jane")),
        ("Jane Q Smith", ("Smith", "Jane Q")),
        ("Cher", ("Cher", "")),
        ("", ("", "")),
    ],
)
def test_split_name(name, expected):
    assert split_name(name) == expected


# ---- the command ----------------------------------------------------------------------------


def test_command_json_prints_exactly_files_claims_and_total(tmp_path):
    # given
    payer = PayerFactory(payer_id="ACME1")
    ready_claim(payer=payer)
    ready_claim(payer=payer)
    out = StringIO()

    # when
    call_command("export_837", "--out", str(tmp_path), "--json", stdout=out)

    # then
    report = json.loads(out.getvalue())
    assert set(report) == {"files", "claims", "total_charge"}
    assert report["claims"] == 2
    assert report["total_charge"] == "402.00"
    assert len(report["files"]) == 1
    assert validate_837(Path(report["files"][0]).read_text()).ok


def test_command_without_json_shows_progress_on_stderr_and_a_summary(tmp_path):
    # given
    ready_claim()
    out, err = StringIO(), StringIO()

    # when
    call_command("export_837", "--out", str(tmp_path), "--test", stdout=out, stderr=err)

    # then
    assert "Exported 1 claims in 1 file(s)" in out.getvalue()
    text = next(tmp_path.iterdir()).read_text()
    assert segments(text)[0][15] == "T"


def test_command_for_a_single_payer(tmp_path):
    # given
    ready_claim(payer=PayerFactory(payer_id="ACME1"))
    ready_claim(payer=PayerFactory(payer_id="OTHER"))
    out = StringIO()

    # when
    call_command("export_837", "--out", str(tmp_path), "--payer", "OTHER", "--json", stdout=out)

    # then
    assert json.loads(out.getvalue())["claims"] == 1


def test_command_refuses_an_unknown_payer(tmp_path):
    with pytest.raises(CommandError, match="--payer: no payer with payer id 'NOPE'"):
        call_command("export_837", "--out", str(tmp_path), "--payer", "NOPE")


def test_command_refuses_an_output_path_that_is_a_file(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")

    with pytest.raises(CommandError, match="--out"):
        call_command("export_837", "--out", str(target / "sub"))


def test_command_fails_cleanly_when_a_batch_fails_validation(tmp_path):
    ready_claim(encounter__patient__birth_date=dt.date(1700, 1, 1))

    with pytest.raises(CommandError, match="failed pyx12 validation"):
        call_command("export_837", "--out", str(tmp_path), "--json", stdout=StringIO())


def test_command_with_nothing_ready_writes_no_file(tmp_path):
    out = StringIO()

    call_command("export_837", "--out", str(tmp_path), "--json", stdout=out)

    assert json.loads(out.getvalue()) == {"files": [], "claims": 0, "total_charge": "0.00"}


# ---- the batches screen ---------------------------------------------------------------------


def _with_batches_urls() -> list:
    """The project's URLs plus the batches screen, in case the lead has not mounted it yet."""
    from django.urls import include, path

    from config.urls import urlpatterns as project

    mounted = any(getattr(p, "namespace", None) == "billing_batches" for p in project)
    extra = [] if mounted else [path("billing/batches/", include("billing.urls_batches"))]
    return [*extra, *project]


urlpatterns = _with_batches_urls()
screen = pytest.mark.urls(__name__)


@pytest.fixture
def billing_user(persona):
    return persona("billing")


@pytest.fixture
def main_claim(main_clinic):
    return ready_claim(encounter__location=main_clinic)


def released_batch(tmp_path, claim) -> ClaimBatch:
    claims_export_837(actor=None, out_dir=tmp_path)
    claim.refresh_from_db()
    return claim.batch


@screen
def test_batch_list_shows_the_batches_of_the_users_locations(
    login_client, billing_user, main_claim, tmp_path, django_assert_max_num_queries
):
    # given
    batch = released_batch(tmp_path, main_claim)
    client = login_client(billing_user)

    # when
    with django_assert_max_num_queries(25):
        response = client.get("/billing/batches/")

    # then
    assert response.status_code == 200
    assert batch.file_name in response.content.decode()
    assert f"/billing/batches/{batch.public_id}/download/" in response.content.decode()


@screen
def test_batch_list_hides_batches_of_other_locations(
    login_client, persona, main_claim, tmp_path, riverside
):
    # given
    batch = released_batch(tmp_path, main_claim)
    from accounts.tests.factories import UserFactory

    elsewhere = UserFactory(roles=["billing_specialist"], locations=[riverside])

    # when
    response = login_client(elsewhere).get("/billing/batches/")

    # then
    assert response.status_code == 200
    assert batch.file_name not in response.content.decode()


@screen
def test_batch_list_lets_a_view_only_user_look_but_not_build(login_client, persona):
    response = login_client(persona("frontdesk")).get("/billing/batches/")

    assert response.status_code == 200
    assert "Build batches" not in response.content.decode()


@screen
def test_batch_list_refuses_a_user_without_billing_access(login_client, persona):
    assert login_client(persona("noroles")).get("/billing/batches/").status_code == 403


@screen
def test_batch_screen_sends_anonymous_users_to_login(client, main_clinic):
    for url in ("/billing/batches/", f"/billing/batches/{main_clinic.public_id}/download/"):
        response = client.get(url)
        assert response.status_code == 302
        assert "login" in response["Location"]


@screen
def test_batch_screen_answers_405_to_the_wrong_method(login_client, billing_user, main_clinic):
    client = login_client(billing_user)

    assert client.post("/billing/batches/").status_code == 405
    assert client.get("/billing/batches/build/").status_code == 405
    assert client.post(f"/billing/batches/{main_clinic.public_id}/download/").status_code == 405


@screen
def test_build_queues_the_export_and_the_task_releases_the_batch(
    login_client, billing_user, main_claim, tmp_path, settings
):
    # given
    from django_tasks_db.models import DBTaskResult

    from billing.export import export_837_task

    settings.PATIENTDESK_X12_OUT_DIR = str(tmp_path)
    client = login_client(billing_user)

    # when
    response = client.post("/billing/batches/build/", {"payer": ""})

    # then
    assert response.status_code == 302
    row = DBTaskResult.objects.get(task_path=export_837_task.module_path)
    assert response["Location"] == f"/billing/batches/?task={row.pk}"
    assert row.args_kwargs["args"] == [billing_user.pk, None, 1]
    assert AuditEvent.objects.filter(event="claim_batch.build").count() == 1
    page = client.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 2s"' in page
    assert "0 of 1 ready claims" in page

    # when the worker runs it
    summary = export_837_task.call(*row.args_kwargs["args"])
    row.set_successful(summary)

    # then
    assert summary["claims"] == 1
    main_claim.refresh_from_db()
    assert main_claim.status == ClaimStatus.SUBMITTED
    assert main_claim.batch.created_by == billing_user
    progress = client.get(f"/billing/batches/build/{row.pk}/").content.decode()
    assert "Finished" in progress
    assert "1 of 1 ready claims" in progress
    assert "every 2s" not in progress


@screen
def test_build_over_htmx_answers_with_the_progress_partial(login_client, billing_user, main_claim):
    response = login_client(billing_user).post(
        "/billing/batches/build/",
        {"payer": str(main_claim.payer.public_id)},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="batch-progress"' in body
    assert "Queued: 0 of 1 ready claims" in body


@screen
def test_build_names_the_field_when_the_payer_is_unknown(login_client, billing_user):
    response = login_client(billing_user).post("/billing/batches/build/", {"payer": "nonsense"})

    assert response.status_code == 422
    assert "Payer: choose a payer from the list" in response.content.decode()
    assert "is-invalid" in response.content.decode()


@screen
def test_build_is_refused_to_a_view_only_user(login_client, persona, main_claim):
    response = login_client(persona("frontdesk")).post("/billing/batches/build/", {"payer": ""})

    assert response.status_code == 403
    main_claim.refresh_from_db()
    assert main_claim.status == ClaimStatus.READY


@screen
def test_progress_of_an_unknown_build_is_404(login_client, billing_user, main_clinic):
    response = login_client(billing_user).get(f"/billing/batches/build/{main_clinic.public_id}/")

    assert response.status_code == 404


@screen
def test_download_returns_the_file_and_audits_every_patient_in_it(
    login_client, billing_user, main_claim, tmp_path
):
    # given
    batch = released_batch(tmp_path, main_claim)

    # when
    response = login_client(billing_user).get(f"/billing/batches/{batch.public_id}/download/")

    # then
    assert response.status_code == 200
    assert response.content.decode() == batch.content
    assert response["Content-Disposition"] == f'attachment; filename="{batch.file_name}"'
    audit = AuditEvent.objects.filter(event="claim_batch.download", outcome="success")
    assert list(audit.values_list("patient_public_id", flat=True)) == [main_claim.patient.public_id]


@screen
def test_download_of_another_locations_batch_is_404_and_audited(
    login_client, main_claim, tmp_path, riverside
):
    # given
    from accounts.tests.factories import UserFactory

    batch = released_batch(tmp_path, main_claim)
    elsewhere = UserFactory(roles=["billing_specialist"], locations=[riverside])

    # when
    response = login_client(elsewhere).get(f"/billing/batches/{batch.public_id}/download/")

    # then
    assert response.status_code == 404
    assert AuditEvent.objects.filter(event="claim_batch.download", outcome="denied").count() == 1


@screen
def test_download_is_refused_to_a_view_only_user(login_client, persona, main_claim, tmp_path):
    batch = released_batch(tmp_path, main_claim)

    response = login_client(persona("frontdesk")).get(
        f"/billing/batches/{batch.public_id}/download/"
    )

    assert response.status_code == 403


@screen
def test_a_failed_batch_cannot_be_downloaded(login_client, billing_user, main_clinic, tmp_path):
    # given
    ready_claim(encounter__location=main_clinic, encounter__patient__birth_date=dt.date(1700, 1, 1))
    claims_export_837(actor=None, out_dir=tmp_path)
    batch = ClaimBatch.objects.get()

    # when
    response = login_client(billing_user).get(f"/billing/batches/{batch.public_id}/download/")

    # then
    assert batch.status == BatchStatus.FAILED
    assert response.status_code == 404
