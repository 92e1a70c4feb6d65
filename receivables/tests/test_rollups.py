"""The KPIs' cash, contractual and gross-charge sums equal the ledger and the charge lines, summed
here in Python, after any mix of the writes that move them: postings (one at a time and in bulk,
which PostgreSQL copies), patient merges re-keying entries, patients and encounters moving to
another location, charge lines added, corrected, edited and deleted. On PostgreSQL the KPIs read
the trigger-kept rollups (receivables.rollups), which `differences` also compares with the scans,
and which `compact` and `rebuild_ar_balances` leave equal; on SQLite they read the scans."""

from __future__ import annotations

import datetime as dt
import io
import threading
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import ChargeLine, Encounter
from billing.tests.factories import ChargeLineFactory, EncounterFactory
from core.tests.factories import LocationFactory
from patientaccounts.ledger import Line, Posting, journal_post, journal_post_many
from patientaccounts.models import JournalEntry, LedgerAccount, TransactionKind
from patients.models import Patient
from patients.tests.factories import PatientFactory
from receivables import rollups
from receivables.balances import differences
from receivables.kpis import charge_rows, compute_kpis, ledger_rows
from receivables.models import ChargeRollup, MoneyRollup
from scheduling.tests.conftest import shared_database  # noqa: F401 (the fixture)

D = Decimal
A = LedgerAccount
K = TransactionKind
ZERO = D("0.00")
# (kind, the account that is not insurance A/R): what the KPIs count and what they must not
POSTINGS = [
    (K.INSURANCE_PAYMENT, A.CASH),
    (K.PATIENT_PAYMENT, A.CASH),
    (K.CONTRACTUAL_ADJUSTMENT, A.CONTRACTUAL),
    (K.REFUND, A.CASH),
    (K.OTHER_ADJUSTMENT, A.OTHER_ADJUSTMENT),  # not counted
    (K.WRITE_OFF, A.CONTRACTUAL),  # a kind the KPIs leave out
]


def _posting(patient: Patient | None, index: int, cents: int, days_ago: int) -> Posting:
    """A posting of POSTINGS[index]; without a patient, an unmatched 835 payment's cash (the
    one posting without a patient that the KPIs count)."""
    kind, account = POSTINGS[index]
    amount = D(cents) / 100
    at = timezone.now() - dt.timedelta(days=days_ago, minutes=7 * days_ago)
    lines = [Line(account, amount), Line(A.INSURANCE_AR, -amount)]
    if patient is None:
        kind, lines = K.INSURANCE_PAYMENT, [Line(A.CASH, amount), Line(A.UNAPPLIED, -amount)]
    return Posting(patient=patient, kind=kind, lines=lines, posted_at=at)


def _local_month(moment: dt.datetime) -> dt.date:
    return timezone.localtime(moment).date().replace(day=1)


def _expected_money(
    since: dt.datetime, until: dt.datetime, scope: set[int] | None
) -> dict[dt.date | None, tuple[Decimal, Decimal]]:
    """Cash and contractual per local month (and None: the period), summed in Python."""
    kinds = set(rollups.MONEY_KINDS)
    out: dict[dt.date | None, tuple[Decimal, Decimal]] = {}
    entries = JournalEntry.objects.select_related("transaction", "patient")
    for entry in entries.filter(account__in=[A.CASH, A.CONTRACTUAL]):
        txn = entry.transaction
        if txn.kind not in kinds or not since <= txn.posted_at < until:
            continue
        if scope is not None and (
            entry.patient is None or entry.patient.home_location_id not in scope
        ):
            continue
        cash = entry.amount if entry.account == A.CASH else ZERO
        contractual = entry.amount if entry.account == A.CONTRACTUAL else ZERO
        for key in (None, _local_month(txn.posted_at)):
            had = out.get(key, (ZERO, ZERO))
            out[key] = (had[0] + cash, had[1] + contractual)
    return out


def _expected_gross(start: dt.date, end: dt.date, scope: set[int] | None) -> dict[Any, Decimal]:
    out: dict[Any, Decimal] = {}
    for line in ChargeLine.objects.select_related("encounter"):
        if not start <= line.service_date <= end:
            continue
        if scope is not None and line.encounter.location_id not in scope:
            continue
        for key in (None, line.service_date.replace(day=1)):
            out[key] = out.get(key, ZERO) + line.amount
    return out


def _money(value: Any) -> Decimal:
    return ZERO if value is None else D(str(value)).quantize(D("0.01"))


def _month(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).date().replace(day=1)
    return value


def _assert_kpi_sums(locations: list[int]) -> None:
    today = timezone.localdate()
    for start in (today - dt.timedelta(days=89), today - dt.timedelta(days=10), today):
        since = timezone.make_aware(dt.datetime.combine(start, dt.time.min))
        until = timezone.make_aware(dt.datetime.combine(today + dt.timedelta(1), dt.time.min))
        for scope in (None, *({loc} for loc in locations), set(locations), set()):
            money = _expected_money(since, until, scope)
            gross = _expected_gross(start, today, scope)
            args = {"start": start, "end": today, "location_ids": scope}
            period = ledger_rows(**args, by_month=False)[0]
            want = money.get(None, (ZERO, ZERO))
            assert (_money(period["cash"]), _money(period["contractual"])) == want, scope
            months = {
                _month(row["month"]): (_money(row["cash"]), _money(row["contractual"]))
                for row in ledger_rows(**args, by_month=True)
            }
            assert {k: v for k, v in months.items() if v != (ZERO, ZERO)} == {
                k: v for k, v in money.items() if k is not None and v != (ZERO, ZERO)
            }
            assert _money(charge_rows(**args, by_month=False)[0]["gross"]) == gross.get(None, ZERO)
            by_month = {
                row["month"]: _money(row["gross"])
                for row in charge_rows(**args, by_month=True)
                if _money(row["gross"])
            }
            assert by_month == {k: v for k, v in gross.items() if k is not None and v}


@pytest.fixture
def world(db, main_clinic):
    riverside = LocationFactory(code="river", name="Riverside")
    locations = [main_clinic, riverside]
    encounters = [
        EncounterFactory(
            location=locations[number % 2],
            date_of_service=timezone.localdate() - dt.timedelta(days=30 * number),
        )
        for number in range(3)
    ]
    return {
        "locations": locations,
        "encounters": encounters,
        "patients": [encounter.patient for encounter in encounters],
    }


operation = st.one_of(
    st.tuples(
        st.just("post"),
        st.integers(-1, 2),  # patient (-1: none)
        st.integers(0, len(POSTINGS) - 1),
        st.integers(-50_000, 50_000),
        st.integers(0, 120),  # days ago
    ),
    st.tuples(st.just("bulk"), st.integers(0, 2), st.integers(0, 3), st.integers(1, 9_000)),
    st.tuples(st.just("home"), st.integers(0, 2), st.integers(0, 1)),
    st.tuples(st.just("rekey"), st.integers(0, 2), st.integers(0, 2)),
    st.tuples(
        st.just("line"), st.integers(0, 2), st.integers(-20_000, 50_000), st.integers(0, 100)
    ),
    st.tuples(
        st.just("edit"), st.integers(0, 5), st.integers(-20_000, 50_000), st.integers(0, 100)
    ),
    st.tuples(st.just("drop"), st.integers(0, 5)),
    st.tuples(st.just("reparent"), st.integers(0, 5), st.integers(0, 2)),
    st.tuples(st.just("visit"), st.integers(0, 2), st.integers(0, 1)),
    st.tuples(st.just("compact")),
)


def _apply(op: tuple[Any, ...], world: dict[str, Any]) -> None:
    kind = op[0]
    patients, encounters = world["patients"], world["encounters"]
    locations = world["locations"]
    if kind == "post" and op[3]:
        patient = patients[op[1]] if op[1] >= 0 else None
        journal_post(actor=None, posting=_posting(patient, op[2], op[3], op[4]))
    elif kind == "bulk":
        # over patientaccounts.ledger's COPY threshold of 100 rows on PostgreSQL
        postings = [_posting(patients[op[1]], op[2], op[3] + n, n % 40) for n in range(60)]
        journal_post_many(actor=None, postings=postings)
    elif kind == "home":
        patient = Patient.objects.get(pk=patients[op[1]].pk)
        patient.home_location = locations[op[2]]
        patient.save()
    elif kind == "rekey" and op[1] != op[2]:
        # what a patient merge does to the ledger (patients.services.patient_merge)
        JournalEntry.objects.filter(patient=patients[op[1]]).update(patient=patients[op[2]])
    elif kind == "line" and op[2]:
        encounter = encounters[op[1]]
        ChargeLineFactory(
            encounter=encounter,
            amount=D(op[2]) / 100,
            service_date=timezone.localdate() - dt.timedelta(days=op[3]),
            line_number=1
            + max(
                ChargeLine.objects.filter(encounter=encounter).values_list(
                    "line_number", flat=True
                ),
                default=0,
            ),
        )
    elif kind == "edit":
        lines = list(ChargeLine.objects.order_by("pk"))
        if lines:
            line = lines[op[1] % len(lines)]
            ChargeLine.objects.filter(pk=line.pk).update(
                amount=D(op[2]) / 100,
                service_date=timezone.localdate() - dt.timedelta(days=op[3]),
            )
    elif kind == "drop":
        lines = list(ChargeLine.objects.filter(corrections=None).order_by("pk"))
        if lines:
            lines[op[1] % len(lines)].delete()
    elif kind == "reparent":
        lines = list(ChargeLine.objects.order_by("pk"))
        if lines:
            line, encounter = lines[op[1] % len(lines)], encounters[op[2]]
            numbers = ChargeLine.objects.filter(encounter=encounter).values_list(
                "line_number", flat=True
            )
            ChargeLine.objects.filter(pk=line.pk).update(
                encounter=encounter, line_number=1 + max(numbers, default=0)
            )
    elif kind == "visit":
        Encounter.objects.filter(pk=encounters[op[1]].pk).update(location=locations[op[2]])
    elif kind == "compact":
        rollups.compact(connection)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operation, max_size=12))
def test_property_kpi_sums_follow_every_write(world, ops):
    locations = [location.pk for location in world["locations"]]
    with transaction.atomic():
        for op in ops:
            _apply(op, world)
        assert rollups.differences(connection) == []
        _assert_kpi_sums(locations)
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_compact_and_rebuild_keep_the_sums_in_fewer_rows(world):
    patient = world["patients"][0]
    for days_ago in (0, 0, 0, 1):
        journal_post(actor=None, posting=_posting(patient, 0, 1_000, days_ago))
    ChargeLineFactory(encounter=world["encounters"][0], line_number=7)
    ChargeLineFactory(encounter=world["encounters"][0], line_number=8)
    locations = [location.pk for location in world["locations"]]
    _assert_kpi_sums(locations)
    if rollups.available(connection):
        rows = MoneyRollup.objects.count(), ChargeRollup.objects.count()
        left = rollups.compact(connection)
        # the three postings of today (one 15-minute bucket, one location) merge into one row
        assert left[0] < rows[0]
        assert left[1] < rows[1]
        assert left == (MoneyRollup.objects.count(), ChargeRollup.objects.count())
        journal_post(actor=None, posting=_posting(patient, 0, 500, 0))
        out = io.StringIO()
        call_command("rebuild_ar_balances", "--compact", stdout=out)
        assert out.getvalue().strip() == (
            f"KPI rollups compacted: {left[0]} money rows, {left[1]} charge rows."
        )
    else:
        assert rollups.compact(connection) == (0, 0)
        assert not MoneyRollup.objects.exists()
    _assert_kpi_sums(locations)
    call_command("rebuild_ar_balances", "--no-progress")
    _assert_kpi_sums(locations)
    assert differences() == []


@pytest.mark.django_db
def test_check_names_a_lost_rollup_trigger_and_a_drifted_sum(world):
    patient = world["patients"][0]
    journal_post(actor=None, posting=_posting(patient, 0, 2_500, 0))
    if not rollups.available(connection):
        assert rollups.missing(connection) == []
        assert rollups.differences(connection) == []
        return
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER recv_money_entry_ins ON {rollups.ENTRY}")
    journal_post(actor=None, posting=_posting(patient, 0, 700, 0))
    problems = differences(limit=0)
    assert "trigger recv_money_entry_ins is missing" in problems
    assert any(line.startswith("money rollup") and "ledger" in line for line in problems)
    call_command("rebuild_ar_balances", "--no-progress")
    assert differences() == []
    _assert_kpi_sums([location.pk for location in world["locations"]])


@pytest.mark.django_db
def test_a_ledger_entry_without_its_transaction_or_patient_is_refused_not_miscounted(world):
    """PostgreSQL: the foreign keys are deferred, so an entry could be written before its
    transaction or its patient; the trigger cannot place it and refuses the statement."""
    if not rollups.available(connection):
        rollups.install(connection)  # nothing to install on SQLite
        assert rollups.missing(connection) == []
        assert not MoneyRollup.objects.exists()
        return
    from django.db import DatabaseError

    txn = journal_post(actor=None, posting=_posting(world["patients"][0], 0, 100, 0))
    sql = (
        "INSERT INTO patientaccounts_journalentry (transaction_id, account, amount, patient_id) "
        "VALUES (%s, %s, %s, %s)"
    )
    for values in ([987_654_321, "cash", 10, None], [txn.pk, "cash", 10, 987_654_321]):
        with (
            pytest.raises(DatabaseError, match="before its transaction or its patient"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, values)
    assert rollups.differences(connection) == []


def test_a_period_whose_bounds_are_not_quarter_hours_is_read_from_the_ledger(world):
    """Liberia kept Monrovia Mean Time (UTC-0:44:30) until 1972: its local midnights then fall
    between buckets, and the KPI reads the ledger instead of the rollup (the same figures)."""
    patient = world["patients"][0]
    journal_post(
        actor=None,
        posting=Posting(
            patient=patient,
            kind=K.INSURANCE_PAYMENT,
            lines=[Line(A.CASH, D("12.34")), Line(A.INSURANCE_AR, D("-12.34"))],
            posted_at=dt.datetime(1971, 6, 15, 12, 0, tzinfo=dt.UTC),
        ),
    )
    with timezone.override("Africa/Monrovia"):
        since = timezone.make_aware(dt.datetime(1971, 6, 1))
        assert not rollups.aligned(since)
        with CaptureQueriesContext(connection) as captured:
            row = ledger_rows(
                start=dt.date(1971, 6, 1),
                end=dt.date(1971, 6, 30),
                location_ids={patient.home_location_id},
                by_month=False,
            )[0]
    assert _money(row["cash"]) == D("12.34")
    sql = " ".join(query["sql"] for query in captured.captured_queries)
    assert "journalentry" in sql
    assert rollups.MONEY not in sql


def test_only_quarter_hours_are_buckets():
    utc = dt.UTC
    assert rollups.aligned(dt.datetime(2026, 3, 8, 5, 0, tzinfo=utc))
    assert rollups.aligned(dt.datetime(2026, 3, 8, 18, 45, tzinfo=utc))  # Kathmandu midnight
    assert not rollups.aligned(dt.datetime(2026, 3, 8, 5, 10, tzinfo=utc))
    assert not rollups.aligned(dt.datetime(2026, 3, 8, 5, 0, 1, tzinfo=utc))


@pytest.mark.django_db
def test_kpis_read_the_rollups_on_postgresql(world, django_assert_max_num_queries):
    """The KPI page's ledger and charge sums: one small query each, whatever the data size."""
    patient = world["patients"][0]
    journal_post(actor=None, posting=_posting(patient, 0, 1_000, 0))
    today = timezone.localdate()
    with django_assert_max_num_queries(10) as captured:
        report = compute_kpis(
            start=today - dt.timedelta(days=89), end=today, location_ids={patient.home_location_id}
        )
    sql = " ".join(query["sql"] for query in captured.captured_queries)
    if rollups.available(connection):
        assert rollups.MONEY in sql
        assert rollups.CHARGES in sql
        assert "journalentry" not in sql
        assert "billing_chargeline" not in sql
    else:
        assert rollups.MONEY not in sql
        assert "journalentry" in sql
    net = next(k for k in report.kpis if k.key == "net_collection_rate")
    assert net.numerator == D("10.00")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("shared_database")
def test_rebuild_waits_for_a_posting_in_progress_and_counts_it(main_clinic):
    """A rebuild started while a posting's transaction is open waits for it (PostgreSQL: it
    retries its locks rather than deadlock; SQLite: the writer lock) and then counts it."""
    patient = PatientFactory(home_location=main_clinic)
    started, release = threading.Event(), threading.Event()
    errors: list[str] = []

    def post() -> None:
        try:
            with transaction.atomic():
                journal_post(actor=None, posting=_posting(patient, 0, 4_200, 0))
                started.set()
                release.wait(20)
        except Exception as exc:  # the test looks for any error
            errors.append(repr(exc))
        finally:
            connections.close_all()

    worker = threading.Thread(target=post)
    worker.start()
    assert started.wait(20)
    threading.Timer(1.5, release.set).start()
    call_command("rebuild_ar_balances", "--no-progress")
    worker.join(20)
    assert not worker.is_alive()
    assert errors == []
    assert differences() == []
    today = timezone.localdate()
    row = ledger_rows(start=today, end=today, location_ids={main_clinic.pk}, by_month=False)[0]
    assert _money(row["cash"]) == D("42.00")
