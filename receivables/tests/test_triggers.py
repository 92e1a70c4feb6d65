"""The database triggers of receivables.triggers keep each claim's A/R attributes and timeline
flags on its balance row equal to the claims' (whatever writes them: ORM saves, set-based
updates, deletes), on SQLite and on PostgreSQL; the reports read from those rows equal the
ledger scan's, and the first-pass KPI read from them equals the timeline's EXISTS definition."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import (
    Claim,
    ClaimEvent,
    ClaimPriorAdjustment,
    ClaimPriorPayment,
    ClaimStatus,
    Encounter,
)
from billing.tests.factories import ClaimFactory, EncounterFactory, PayerFactory
from core.tests.factories import LocationFactory
from patientaccounts.ledger import Line, Posting, journal_post
from patientaccounts.models import LedgerAccount, TransactionKind
from receivables import triggers
from receivables.aging import (
    Basis,
    GroupBy,
    compute_aging,
    outstanding_and_first_pass,
    total_outstanding,
)
from receivables.balances import differences, rebuild
from receivables.kpis import first_pass_rows
from receivables.models import ClaimArBalance
from receivables.tests.conftest import set_status

D = Decimal
S = ClaimStatus


def _row(claim: Claim) -> ClaimArBalance:
    return ClaimArBalance.objects.get(claim_reference=claim.patient_control_number)


def _reports_agree(**scope: Any) -> None:
    today = timezone.localdate()
    for by in GroupBy.values:
        for basis in Basis.values:
            fast = compute_aging(by=by, basis=basis, as_of=today, **scope)
            slow = compute_aging(by=by, basis=basis, as_of=today, from_ledger=True, **scope)
            assert fast == slow
    assert total_outstanding(as_of=today, **scope) == total_outstanding(
        as_of=today, from_ledger=True, **scope
    )


def _first_pass_from_timeline(start: dt.date, end: dt.date) -> tuple[int, int]:
    """The clean-claim count as the KPI defines it, straight from the claims and timelines."""
    since = timezone.make_aware(dt.datetime.combine(start, dt.time.min))
    until = timezone.make_aware(dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min))
    claims = Claim.objects.filter(
        frequency_code="1", submitted_at__gte=since, submitted_at__lt=until
    )
    paid = ClaimEvent.objects.filter(
        claim_id=OuterRef("pk"), to_status__in=[S.PAID, S.PARTIALLY_PAID]
    )
    bad = ClaimEvent.objects.filter(
        claim_id=OuterRef("pk"), to_status__in=[S.REJECTED, S.DENIED, S.APPEALED, S.RESUBMITTED]
    )
    clean = claims.filter(Exists(paid), ~Exists(bad)).count()
    return claims.count(), clean


@pytest.mark.django_db
def test_a_new_claim_gets_its_row_and_updates_follow(main_clinic):
    claim = ClaimFactory(lines=2)
    row = _row(claim)
    assert row.claim_id == claim.pk
    assert (row.patient_id, row.payer_id) == (claim.patient_id, claim.payer_id)
    assert row.location_id == claim.encounter.location_id
    assert row.date_of_service == claim.date_of_service
    assert row.receivable
    assert row.original
    assert row.base == claim.total_charge
    assert (row.amount, row.ever_paid, row.ever_not_clean) == (D("0.00"), False, False)
    # a set-based update (as the 837 export and the 835 poster write) is seen too
    when = timezone.now()
    Claim.objects.filter(pk=claim.pk).update(status=S.VOID, submitted_at=when)
    row.refresh_from_db()
    assert not row.receivable
    assert row.submitted_at == when
    Claim.objects.filter(pk=claim.pk).update(status=S.SUBMITTED, total_charge=D("99.10"))
    row.refresh_from_db()
    assert row.receivable
    assert row.base == D("99.10")
    assert differences() == []


@pytest.mark.django_db
def test_prior_payer_amounts_lower_the_base(main_clinic):
    claim = ClaimFactory(lines=1)
    Claim.objects.filter(pk=claim.pk).update(total_charge=D("200.00"))
    payment = ClaimPriorPayment.objects.create(claim=claim, payer=claim.payer, amount=D("120.00"))
    ClaimPriorAdjustment.objects.create(
        claim=claim, payer=claim.payer, group_code="CO", reason_code="45", amount=D("30.00")
    )
    ClaimPriorAdjustment.objects.create(  # patient responsibility stays in the base
        claim=claim, payer=claim.payer, group_code="PR", reason_code="1", amount=D("20.00")
    )
    assert _row(claim).base == D("50.00")
    ClaimPriorPayment.objects.filter(pk=payment.pk).update(amount=D("100.00"))
    assert _row(claim).base == D("70.00")
    payment.delete()
    assert _row(claim).base == D("170.00")
    assert differences() == []
    _reports_agree()


@pytest.mark.django_db
def test_an_encounter_moved_to_another_location_moves_its_claims(main_clinic):
    riverside = LocationFactory(code="river", name="Riverside")
    claim = ClaimFactory(lines=1)
    Encounter.objects.filter(pk=claim.encounter_id).update(location=riverside)
    assert _row(claim).location_id == riverside.pk
    assert differences() == []
    _reports_agree(location_ids={riverside.pk})
    _reports_agree(location_ids={main_clinic.pk})


@pytest.mark.django_db
def test_timeline_events_set_and_clear_the_first_pass_flags(main_clinic):
    claim = ClaimFactory(lines=1)
    at = timezone.now()
    paid = ClaimEvent.objects.create(claim=claim, at=at, from_status=S.SUBMITTED, to_status=S.PAID)
    assert (_row(claim).ever_paid, _row(claim).ever_not_clean) == (True, False)
    ClaimEvent.objects.create(claim=claim, at=at, from_status=S.PAID, to_status=S.APPEALED)
    assert _row(claim).ever_not_clean
    ClaimEvent.objects.filter(to_status=S.APPEALED).update(to_status=S.ACCEPTED)
    assert not _row(claim).ever_not_clean
    paid.delete()
    assert not _row(claim).ever_paid
    assert differences() == []


@pytest.mark.django_db
def test_a_deleted_or_renumbered_claim_leaves_the_ledger_amount_without_a_claim(main_clinic):
    kept, renumbered = ClaimFactory(lines=1), ClaimFactory(lines=1)
    old_number = renumbered.patient_control_number
    journal_post(
        actor=None,
        posting=Posting(
            patient=kept.patient,
            kind=TransactionKind.INSURANCE_PAYMENT,
            lines=[
                Line(LedgerAccount.CASH, D("10.00")),
                Line(LedgerAccount.INSURANCE_AR, D("-10.00")),
            ],
            claim_reference=old_number,
        ),
    )
    Claim.objects.filter(pk=renumbered.pk).update(patient_control_number="RENUMBERED1")
    old = ClaimArBalance.objects.get(claim_reference=old_number)
    assert (old.claim_id, old.receivable, old.amount) == (None, False, D("-10.00"))
    assert _row(Claim.objects.get(pk=renumbered.pk)).claim_id == renumbered.pk
    assert differences() == []
    _reports_agree()
    Claim.objects.filter(pk=kept.pk).delete()
    assert not ClaimArBalance.objects.filter(claim_id=kept.pk).exists()
    assert differences() == []
    _reports_agree()


@pytest.mark.django_db
def test_check_names_a_drifted_attribute_and_rebuild_restores_it(main_clinic):
    claim = ClaimFactory(lines=1)
    ClaimArBalance.objects.filter(claim_id=claim.pk).update(receivable=False, ever_paid=True)
    problems = differences()
    assert len(problems) == 1
    assert problems[0].startswith(f"claim {claim.patient_control_number} attributes:")
    with pytest.raises(CommandError, match="differ"):
        call_command("rebuild_ar_balances", "--check")
    rebuild()
    assert differences() == []
    row = _row(claim)
    assert row.receivable
    assert not row.ever_paid


@pytest.mark.django_db
def test_migrations_leave_every_trigger_and_check_finds_a_lost_one(main_clinic):
    from django.db import connection

    assert triggers.missing(connection) == []
    # when: a trigger is lost (as when a later migration rebuilds a table on SQLite)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TRIGGER recv_event_ins ON billing_claimevent")
        else:
            cursor.execute("DROP TRIGGER recv_event_ins")
    claim = ClaimFactory(lines=1)
    ClaimEvent.objects.create(claim=claim, at=timezone.now(), to_status=S.PAID)
    # then: --check names it (and the flag it failed to set); a rebuild restores both
    assert differences()[0] == "trigger recv_event_ins is missing"
    with pytest.raises(CommandError, match="differ"):
        call_command("rebuild_ar_balances", "--check")
    call_command("rebuild_ar_balances", "--no-progress")
    assert triggers.missing(connection) == []
    assert _row(claim).ever_paid
    assert differences() == []


STATUSES = [S.DRAFT, S.READY, S.SUBMITTED, S.PAID, S.DENIED, S.VOID, S.CLOSED, S.RESUBMITTED]
operation = st.one_of(
    st.tuples(st.just("status"), st.integers(0, 3), st.sampled_from(STATUSES)),
    st.tuples(st.just("submitted"), st.integers(0, 3), st.integers(-1, 200)),
    st.tuples(st.just("charge"), st.integers(0, 3), st.integers(1, 50_000)),
    st.tuples(st.just("prior"), st.integers(0, 3), st.integers(-5_000, 5_000)),
    st.tuples(st.just("adjust"), st.integers(0, 3), st.sampled_from(["CO", "PR", "OA"])),
    st.tuples(st.just("event"), st.integers(0, 3), st.sampled_from(STATUSES)),
    st.tuples(st.just("move"), st.integers(0, 3), st.integers(0, 1)),
    st.tuples(st.just("pay"), st.integers(0, 3), st.integers(-9_000, 9_000)),
)


@pytest.fixture
def world(db, main_clinic):
    riverside = LocationFactory(code="river", name="Riverside")
    payers = [PayerFactory(name="Aetna"), PayerFactory(name="Cigna")]
    today = timezone.localdate()
    claims = []
    for number in range(4):
        claim = ClaimFactory(
            encounter=EncounterFactory(
                date_of_service=today - dt.timedelta(days=25 * number), location=main_clinic
            ),
            payer=payers[number % 2],
            lines=1,
        )
        claims.append(set_status(claim, S.SUBMITTED, submitted_at=timezone.now()))
    return {"claims": claims, "locations": [main_clinic, riverside]}


def _apply(op: tuple[str, int, Any], world: dict[str, Any]) -> None:
    kind, index, value = op
    claim = world["claims"][index]
    claims = Claim.objects.filter(pk=claim.pk)
    if kind == "status":
        claims.update(status=value)
    elif kind == "submitted":
        at = None if value < 0 else timezone.now() - dt.timedelta(days=value)
        claims.update(submitted_at=at)
    elif kind == "charge":
        claims.update(total_charge=D(value) / 100)
    elif kind == "prior":
        ClaimPriorPayment.objects.create(claim=claim, payer=claim.payer, amount=D(value) / 100)
    elif kind == "adjust":
        ClaimPriorAdjustment.objects.create(
            claim=claim, payer=claim.payer, group_code=value, reason_code="45", amount=D("7.25")
        )
    elif kind == "event":
        ClaimEvent.objects.create(claim=claim, at=timezone.now(), to_status=value)
    elif kind == "move":
        Encounter.objects.filter(pk=claim.encounter_id).update(location=world["locations"][value])
    elif kind == "pay" and value:
        amount = D(value) / 100
        journal_post(
            actor=None,
            posting=Posting(
                patient=claim.patient,
                kind=TransactionKind.INSURANCE_PAYMENT,
                lines=[
                    Line(LedgerAccount.CASH, amount),
                    Line(LedgerAccount.INSURANCE_AR, -amount),
                ],
                claim_reference=claim.patient_control_number,
            ),
        )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operation, max_size=15))
def test_property_rows_follow_every_write_and_reports_equal_the_scans(world, ops):
    today = timezone.localdate()
    start = today - dt.timedelta(days=120)
    with transaction.atomic():
        for op in ops:
            _apply(op, world)
        assert differences() == []
        _reports_agree()
        for location in world["locations"]:
            _reports_agree(location_ids={location.pk})
        row = first_pass_rows(start=start, end=today, location_ids=None, by_month=False)[0]
        assert (row["submitted"], row["clean"] or 0) == _first_pass_from_timeline(start, today)
        # the KPI page's single scan gives the same total and counts, in every scope
        since = timezone.make_aware(dt.datetime.combine(start, dt.time.min))
        until = timezone.make_aware(dt.datetime.combine(today, dt.time.min)) + dt.timedelta(1)
        for scope in (None, *({location.pk} for location in world["locations"])):
            counts = first_pass_rows(start=start, end=today, location_ids=scope, by_month=False)
            assert outstanding_and_first_pass(
                as_of=today, since=since, until=until, location_ids=scope
            ) == (
                total_outstanding(as_of=today, from_ledger=True, location_ids=scope),
                counts[0]["submitted"],
                counts[0]["clean"] or 0,
            )
        transaction.set_rollback(True)
