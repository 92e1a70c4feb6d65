from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from audit.models import AuditEvent
from patientaccounts import services
from patientaccounts.models import (
    BillingDispute,
    DisputeEvent,
    JournalTransaction,
    PatientPayment,
    PaymentPlan,
    RefundRequest,
    Statement,
)
from patientaccounts.selectors import account_balances, plans_for, statement_lines
from patientaccounts.tests.factories import give_credit, post_charge, take_payment
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def patient(main_clinic):
    return PatientFactory(home_location=main_clinic)


# --- payments ---


def test_taking_a_payment_credits_the_patient_and_debits_cash_with_a_receipt(frontdesk, patient):
    # given
    post_charge(patient, "100.00")
    # when
    payment = services.payment_take(
        actor=frontdesk,
        patient=patient,
        amount="40.00",
        method="check",
        reference="1042",
        idempotency_key="form-1",
    )
    # then
    assert payment.receipt_number.startswith("R")
    assert account_balances(patient=patient).patient_due == D("60.00")
    assert sorted((e.account, e.amount) for e in payment.transaction.entries.all()) == [
        ("cash", D("40.00")),
        ("patient_ar", D("-40.00")),
    ]
    assert payment.location == patient.home_location
    assert AuditEvent.objects.filter(
        event="payment.take", patient_public_id=patient.public_id
    ).exists()


def test_a_double_submitted_payment_form_creates_one_payment(frontdesk, patient):
    kwargs = {
        "actor": frontdesk,
        "patient": patient,
        "amount": "25.00",
        "method": "cash",
        "idempotency_key": "form-2",
    }
    first = services.payment_take(**kwargs)
    second = services.payment_take(**kwargs)
    assert first.pk == second.pk
    assert PatientPayment.objects.count() == 1
    assert JournalTransaction.objects.count() == 1


def test_a_reused_form_key_for_a_different_payment_is_refused(frontdesk, patient):
    services.payment_take(
        actor=frontdesk, patient=patient, amount="25.00", method="cash", idempotency_key="form-3"
    )
    with pytest.raises(ValidationError) as info:
        services.payment_take(
            actor=frontdesk,
            patient=patient,
            amount="30.00",
            method="cash",
            idempotency_key="form-3",
        )
    assert "idempotency_key" in info.value.error_dict


@pytest.mark.parametrize(
    "reference", ["4111111111111111", "4111 1111 1111 1111", "card 5500-0000-0000-0004 auth 1"]
)
def test_refuses_a_full_card_number_in_the_reference_and_saves_nothing(
    frontdesk, patient, reference
):
    with pytest.raises(ValidationError) as info:
        services.payment_take(
            actor=frontdesk,
            patient=patient,
            amount="10.00",
            method="card",
            reference=reference,
            idempotency_key="k",
        )
    assert "reference" in info.value.error_dict
    assert "card number" in str(info.value)
    assert not PatientPayment.objects.exists()
    assert not JournalTransaction.objects.exists()


@pytest.mark.parametrize(
    ("amount", "method", "reference", "field"),
    [
        ("0", "cash", "", "amount"),
        ("-5.00", "cash", "", "amount"),
        ("12.345", "cash", "", "amount"),
        ("abc", "cash", "", "amount"),
        ("10.00", "barter", "", "method"),
        ("10.00", "check", "", "reference"),
        ("10.00", "card", "", "reference"),
    ],
)
def test_bad_payment_input_names_the_field_and_saves_nothing(
    frontdesk, patient, amount, method, reference, field
):
    with pytest.raises(ValidationError) as info:
        services.payment_take(
            actor=frontdesk,
            patient=patient,
            amount=amount,
            method=method,
            reference=reference,
            idempotency_key="k",
        )
    assert field in info.value.error_dict
    assert not PatientPayment.objects.exists()
    assert not JournalTransaction.objects.exists()
    assert not AuditEvent.objects.filter(event__in=["payment.take", "ledger.post"]).exists()


def test_a_card_reference_with_last_four_and_auth_code_is_accepted(frontdesk, patient):
    payment = take_payment(patient, frontdesk, method="card", reference="x1234 auth 0A1B2C")
    assert payment.reference == "x1234 auth 0A1B2C"


def test_taking_payments_needs_the_post_payments_capability(persona, patient):
    with pytest.raises(PermissionDenied):
        take_payment(patient, persona("meddirector"))


# --- refunds ---


def test_a_refund_is_posted_only_after_a_second_person_approves(frontdesk, officemanager, patient):
    # given
    give_credit(patient, "50.00")
    refund = services.refund_request(
        actor=frontdesk, patient=patient, amount="30.00", method="check", reason="Overpaid copay"
    )
    assert account_balances(patient=patient).patient_due == D("-50.00")
    # when
    services.refund_approve(actor=officemanager, refund=refund)
    # then
    refund.refresh_from_db()
    assert refund.status == "posted"
    assert refund.decided_by == officemanager
    assert account_balances(patient=patient).patient_due == D("-20.00")
    assert sorted((e.account, e.amount) for e in refund.transaction.entries.all()) == [
        ("patient_ar", D("30.00")),
        ("refunds", D("-30.00")),
    ]


def test_the_requester_cannot_approve_their_own_refund(officemanager, patient):
    give_credit(patient, "50.00")
    refund = services.refund_request(
        actor=officemanager, patient=patient, amount="10.00", method="check", reason="Overpaid"
    )
    with pytest.raises(ValidationError, match="someone else must approve"):
        services.refund_approve(actor=officemanager, refund=refund)
    refund.refresh_from_db()
    assert refund.status == "requested"
    assert refund.transaction is None


def test_a_refund_needs_a_reason_and_cannot_exceed_the_credit_balance(frontdesk, patient):
    give_credit(patient, "20.00")
    with pytest.raises(ValidationError) as info:
        services.refund_request(
            actor=frontdesk, patient=patient, amount="25.00", method="check", reason="Overpaid"
        )
    assert "amount" in info.value.error_dict
    with pytest.raises(ValidationError) as info:
        services.refund_request(
            actor=frontdesk, patient=patient, amount="5.00", method="check", reason=" "
        )
    assert "reason" in info.value.error_dict
    services.refund_request(
        actor=frontdesk, patient=patient, amount="15.00", method="check", reason="Overpaid"
    )
    with pytest.raises(ValidationError, match=r"5\.00"):
        services.refund_request(
            actor=frontdesk, patient=patient, amount="6.00", method="check", reason="Again"
        )
    assert RefundRequest.objects.count() == 1


def test_a_rejected_refund_posts_nothing_and_needs_a_note(frontdesk, officemanager, patient):
    give_credit(patient, "20.00")
    refund = services.refund_request(
        actor=frontdesk, patient=patient, amount="5.00", method="cash", reason="Asked"
    )
    with pytest.raises(ValidationError) as info:
        services.refund_reject(actor=officemanager, refund=refund, note="")
    assert "note" in info.value.error_dict
    services.refund_reject(actor=officemanager, refund=refund, note="Payment still pending at bank")
    refund.refresh_from_db()
    assert refund.status == "rejected"
    assert account_balances(patient=patient).patient_due == D("-20.00")
    with pytest.raises(ValidationError, match="already"):
        services.refund_approve(actor=officemanager, refund=refund)


def test_approving_refunds_needs_the_approve_refunds_capability(frontdesk, persona, patient):
    give_credit(patient, "20.00")
    refund = services.refund_request(
        actor=frontdesk, patient=patient, amount="5.00", method="cash", reason="Asked"
    )
    with pytest.raises(PermissionDenied):
        services.refund_approve(actor=persona("billing"), refund=refund)


# --- payment plans ---


def test_instalments_reduce_the_plan_remaining_and_complete_it(frontdesk, patient):
    # given
    post_charge(patient, "300.00")
    year = timezone.localdate().year + 1
    plan = services.payment_plan_create(
        actor=frontdesk,
        patient=patient,
        total="300.00",
        instalment_amount="100.00",
        start_date=dt.date(year, 1, 31),
    )
    # when
    take_payment(patient, frontdesk, "100.00", plan=plan)
    # then
    plan.refresh_from_db()
    assert plan.next_due == dt.date(year, 2, calendar.monthrange(year, 2)[1])
    assert plans_for(patient=patient)[0].remaining == D("200.00")
    take_payment(patient, frontdesk, "200.00", plan=plan)
    plan.refresh_from_db()
    assert plan.status == "completed"
    assert plans_for(patient=patient)[0].remaining == D("0.00")


def test_a_plan_cannot_exceed_the_balance_or_have_an_instalment_above_its_total(frontdesk, patient):
    post_charge(patient, "100.00")
    today = timezone.localdate()
    with pytest.raises(ValidationError) as info:
        services.payment_plan_create(
            actor=frontdesk,
            patient=patient,
            total="150.00",
            instalment_amount="50.00",
            start_date=today,
        )
    assert "total" in info.value.error_dict
    with pytest.raises(ValidationError) as info:
        services.payment_plan_create(
            actor=frontdesk,
            patient=patient,
            total="100.00",
            instalment_amount="150.00",
            start_date=today,
        )
    assert "instalment_amount" in info.value.error_dict
    services.payment_plan_create(
        actor=frontdesk,
        patient=patient,
        total="100.00",
        instalment_amount="50.00",
        start_date=today,
    )
    with pytest.raises(ValidationError, match="already has an active"):
        services.payment_plan_create(
            actor=frontdesk,
            patient=patient,
            total="100.00",
            instalment_amount="50.00",
            start_date=today,
        )
    assert PaymentPlan.objects.count() == 1


def test_add_months_clamps_to_the_end_of_the_month():
    assert services.add_months(dt.date(2026, 1, 31)) == dt.date(2026, 2, 28)
    assert services.add_months(dt.date(2026, 12, 15)) == dt.date(2027, 1, 15)


# --- statements ---


def test_a_statement_has_the_balance_aging_and_only_the_lines_since_the_last_one(
    officemanager, patient
):
    # given
    today = timezone.localdate()
    post_charge(patient, "80.00", service_date=today - dt.timedelta(days=100))
    first = services.statement_generate(
        actor=officemanager, patient=patient, statement_date=today - dt.timedelta(days=1)
    )
    post_charge(patient, "20.00", service_date=today - dt.timedelta(days=5))
    # when
    second = services.statement_generate(
        actor=officemanager, patient=patient, statement_date=today, message="Thank you"
    )
    # then
    assert second.balance == D("100.00")
    assert [amount for _, amount in second.aging_pairs()] == [D("20.00"), 0, 0, D("80.00"), 0]
    assert sum(amount for _, amount in second.aging_pairs()) == second.balance
    assert second.period_start == first.period_end
    assert [line.patient_amount for line in statement_lines(statement=second)] == [D("20.00")]
    assert [line.patient_amount for line in statement_lines(statement=first)] == [D("80.00")]
    assert AuditEvent.objects.filter(event="statement.generate").count() == 2


def test_a_second_statement_on_the_same_day_is_the_same_statement(officemanager, patient):
    post_charge(patient, "10.00")
    a = services.statement_generate(actor=officemanager, patient=patient)
    b = services.statement_generate(actor=officemanager, patient=patient)
    assert a.pk == b.pk
    assert Statement.objects.count() == 1


def test_a_statement_run_covers_every_patient_with_a_balance_due_at_the_location(
    officemanager, main_clinic, riverside, django_capture_on_commit_callbacks
):
    # given
    owing = PatientFactory.create_batch(2, home_location=main_clinic)
    for p in owing:
        post_charge(p, "30.00")
    settled = PatientFactory(home_location=main_clinic)
    post_charge(settled, "30.00")
    give_credit(settled, "30.00")
    post_charge(PatientFactory(home_location=main_clinic), "30.00", to_patient=False)
    post_charge(PatientFactory(home_location=riverside), "30.00")
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = services.statement_run_start(
            actor=officemanager, location=main_clinic, statement_date=timezone.localdate()
        )
    progress = []
    services.statement_run_execute(
        run_id=run.pk, progress=lambda done, total: progress.append((done, total))
    )
    # then
    assert len(callbacks) == 1
    run.refresh_from_db()
    assert (run.status, run.total, run.done) == ("done", 2, 2)
    assert progress == [(1, 2), (2, 2)]
    assert set(Statement.objects.values_list("patient_id", flat=True)) == {p.pk for p in owing}


def test_starting_a_statement_run_enqueues_the_background_task_after_commit(
    officemanager, main_clinic, django_capture_on_commit_callbacks
):
    from django_tasks_db.models import DBTaskResult

    with django_capture_on_commit_callbacks(execute=True):
        run = services.statement_run_start(
            actor=officemanager, location=main_clinic, statement_date=timezone.localdate()
        )
    [job] = DBTaskResult.objects.filter(task_path="patientaccounts.tasks.run_statements")
    assert job.args_kwargs == {"args": [run.pk], "kwargs": {}}


# --- disputes ---


def test_a_dispute_moves_through_its_states_with_a_timeline_and_audit(
    officemanager, persona, patient
):
    # given
    admin = persona("officeadmin")
    dispute = services.dispute_open(
        actor=officemanager,
        patient=patient,
        reason="duplicate",
        disputed_amount="45.00",
        details="Charged twice for the visit",
    )
    # when
    services.dispute_update(
        actor=officemanager, dispute=dispute, status="investigating", owner=admin
    )
    services.dispute_add_note(actor=admin, dispute=dispute, text="Called the patient back")
    with pytest.raises(ValidationError) as info:
        services.dispute_update(actor=admin, dispute=dispute, status="resolved")
    assert "resolution" in info.value.error_dict
    services.dispute_update(
        actor=admin, dispute=dispute, status="resolved", resolution="Duplicate reversed"
    )
    # then
    dispute.refresh_from_db()
    assert dispute.status == "resolved"
    assert dispute.owner == admin
    assert dispute.closed_at is not None
    assert list(DisputeEvent.objects.filter(dispute=dispute).values_list("kind", flat=True)) == [
        "opened",
        "status",
        "assigned",
        "note",
        "status",
    ]
    events = list(
        AuditEvent.objects.filter(category="payments", event__startswith="dispute.").values_list(
            "event", flat=True
        )
    )
    assert sorted(events) == ["dispute.note", "dispute.open", "dispute.update", "dispute.update"]
    assert not AuditEvent.objects.filter(reason__contains="twice").exists()


def test_a_closed_dispute_can_only_be_reopened(officemanager, patient):
    dispute = services.dispute_open(
        actor=officemanager, patient=patient, reason="other", disputed_amount="5.00"
    )
    services.dispute_update(
        actor=officemanager, dispute=dispute, status="rejected", resolution="Charge correct"
    )
    with pytest.raises(ValidationError) as info:
        services.dispute_update(actor=officemanager, dispute=dispute, status="investigating")
    assert "status" in info.value.error_dict
    services.dispute_update(actor=officemanager, dispute=dispute, status="open")
    dispute.refresh_from_db()
    assert dispute.status == "open"
    assert dispute.closed_at is None


def test_opening_a_dispute_checks_the_amount_and_the_capability(frontdesk, officemanager, patient):
    with pytest.raises(ValidationError) as info:
        services.dispute_open(
            actor=officemanager, patient=patient, reason="other", disputed_amount="0"
        )
    assert "disputed_amount" in info.value.error_dict
    with pytest.raises(PermissionDenied):
        services.dispute_open(
            actor=frontdesk, patient=patient, reason="other", disputed_amount="5.00"
        )
    assert not BillingDispute.objects.exists()
