"""Access matrix and behaviour of every patient-account screen."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from audit.models import AuditEvent
from patientaccounts import services
from patientaccounts.models import (
    BillingDispute,
    JournalEntry,
    PatientPayment,
    RefundRequest,
    Statement,
    StatementRun,
)
from patientaccounts.selectors import account_balances
from patientaccounts.tests.factories import give_credit, post_charge, take_payment
from patients.tests.factories import PatientFactory, PatientFlagFactory

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def patient(main_clinic):
    p = PatientFactory(home_location=main_clinic)
    post_charge(p, "120.00", service_date=timezone.localdate() - dt.timedelta(days=40))
    return p


@pytest.fixture
def river(riverside):
    """Users with every billing role, but at Riverside only."""

    def make(role: str):
        return UserFactory(username=f"river-{role}", roles=[role], locations=[riverside])

    return make


@pytest.fixture
def docs(patient, frontdesk, persona):
    """One of each document on the patient's account."""
    admin = persona("officeadmin")
    payment = take_payment(patient, frontdesk, "20.00")
    statement = services.statement_generate(actor=persona("billing"), patient=patient)
    dispute = services.dispute_open(
        actor=admin, patient=patient, reason="duplicate", disputed_amount="10.00"
    )
    other = PatientFactory(home_location=patient.home_location)
    give_credit(other, "30.00")
    refund = services.refund_request(
        actor=frontdesk, patient=other, amount="30.00", method="check", reason="Overpaid"
    )
    return {"payment": payment, "statement": statement, "dispute": dispute, "refund": refund}


PATIENT_ROUTES = {
    "account",
    "payment_take",
    "refund_request",
    "plan_create",
    "statement_create",
    "dispute_open",
}
DOCUMENT_ROUTES = {
    "receipt_pdf": "payment",
    "refund_approve": "refund",
    "refund_reject": "refund",
    "statement_pdf": "statement",
    "dispute_detail": "dispute",
    "dispute_note": "dispute",
    "dispute_letter": "dispute",
}


def route(name, docs, patient):
    """URL of each route (document routes point at the fixture's documents)."""
    if name in PATIENT_ROUTES:
        args = [patient.public_id]
    elif name in DOCUMENT_ROUTES:
        args = [docs[DOCUMENT_ROUTES[name]].public_id]
        if name == "dispute_letter":
            args.append("acknowledgement")
    else:
        args = []
    return reverse(f"patientaccounts:{name}", args=args)


ALL_ROUTES = {
    # name: (methods allowed, a method that must answer 405)
    "account": "post",
    "payment_take": "put",
    "refund_request": "put",
    "plan_create": "put",
    "statement_create": "get",
    "dispute_open": "put",
    "receipt_pdf": "post",
    "refund_list": "post",
    "refund_approve": "get",
    "refund_reject": "get",
    "statement_runs": "put",
    "statement_pdf": "post",
    "dispute_list": "post",
    "dispute_detail": "put",
    "dispute_note": "get",
    "dispute_letter": "post",
    "deposit_report": "post",
}


@pytest.mark.parametrize("name", sorted(ALL_ROUTES))
def test_anonymous_users_are_sent_to_sign_in(client, docs, patient, name):
    response = client.get(route(name, docs, patient))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


@pytest.mark.parametrize(("name", "method"), sorted(ALL_ROUTES.items()))
def test_wrong_http_method_answers_405(login_client, persona, docs, patient, name, method):
    client = login_client(persona("officemanager"))
    response = getattr(client, method)(route(name, docs, patient))
    assert response.status_code == 405


# --- account page ---


def test_account_page_shows_balances_running_balance_and_alerts_and_is_audited(
    login_client, frontdesk, patient, docs, django_assert_max_num_queries
):
    PatientFlagFactory(patient=patient, kind="fall_risk", severity="warning")
    client = login_client(frontdesk)
    with django_assert_max_num_queries(40):
        response = client.get(route("account", docs, patient))
    assert response.status_code == 200
    html = response.content.decode()
    assert "$100.00" in html  # 120 charged, 20 paid
    assert docs["payment"].receipt_number in html
    assert docs["statement"].number in html
    assert "Fall risk" in html
    assert AuditEvent.objects.filter(
        event="patient_account.view", patient_public_id=patient.public_id, outcome="success"
    ).exists()


def test_account_page_query_count_does_not_grow_with_ledger_lines(
    login_client, frontdesk, patient, django_assert_max_num_queries
):
    client = login_client(frontdesk)
    client.get(route("account", {}, patient))
    for _ in range(15):
        take_payment(patient, frontdesk, "1.00")
        post_charge(patient, "2.00")
    with django_assert_max_num_queries(40) as captured:
        client.get(route("account", {}, patient))
    few = len(captured)
    for _ in range(15):
        take_payment(patient, frontdesk, "1.00")
    with django_assert_max_num_queries(few):
        client.get(route("account", {}, patient))


@pytest.mark.parametrize("who", ["privacy", "servicedirector", "outsider"])
def test_account_page_is_404_without_billing_view_or_outside_the_location(
    login_client, persona, patient, who
):
    response = login_client(persona(who)).get(route("account", {}, patient))
    assert response.status_code == 404
    assert AuditEvent.objects.filter(event="patient_account.view", outcome="denied").exists()


# --- payments ---


def test_take_payment_form_autofocuses_amount_and_carries_an_idempotency_key(
    login_client, frontdesk, patient
):
    response = login_client(frontdesk).get(route("payment_take", {}, patient))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="amount"' in html
    assert "autofocus" in html
    assert 'type="hidden" name="idempotency_key"' in html


def test_a_double_submitted_payment_form_records_one_payment(login_client, frontdesk, patient):
    client = login_client(frontdesk)
    data = {"amount": "25.00", "method": "cash", "reference": "", "idempotency_key": "abc123"}
    first = client.post(route("payment_take", {}, patient), data)
    second = client.post(route("payment_take", {}, patient), data)
    assert first.status_code == second.status_code == 302
    assert PatientPayment.objects.count() == 1
    assert account_balances(patient=patient).patient_due == D("95.00")


def test_payment_errors_are_shown_inline_naming_the_field(login_client, frontdesk, patient):
    client = login_client(frontdesk)
    response = client.post(
        route("payment_take", {}, patient),
        {
            "amount": "10.00",
            "method": "card",
            "reference": "4111 1111 1111 1111",
            "idempotency_key": "k1",
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "is-invalid" in html
    assert "Never enter a full card number" in html
    assert "Please correct the following" in html
    response = client.post(
        route("payment_take", {}, patient),
        {"amount": "ten", "method": "cash", "idempotency_key": "k2"},
    )
    assert "Amount must be a number" in response.content.decode()
    assert not PatientPayment.objects.exists()


def test_taking_payments_needs_the_capability_403(login_client, persona, patient):
    response = login_client(persona("meddirector")).get(route("payment_take", {}, patient))
    assert response.status_code == 403


def test_take_payment_for_a_patient_at_another_location_is_404(login_client, outsider, patient):
    response = login_client(outsider).post(
        route("payment_take", {}, patient),
        {"amount": "5.00", "method": "cash", "idempotency_key": "x"},
    )
    assert response.status_code == 404
    assert not PatientPayment.objects.exists()


def test_receipt_is_a_pdf_and_its_print_is_audited(login_client, frontdesk, patient, docs):
    response = login_client(frontdesk).get(route("receipt_pdf", docs, patient))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert AuditEvent.objects.filter(
        event="payment.receipt", action="print", patient_public_id=patient.public_id
    ).exists()


@pytest.mark.parametrize("who", ["privacy", "outsider"])
def test_receipt_is_404_for_users_who_may_not_see_it(login_client, persona, patient, docs, who):
    assert login_client(persona(who)).get(route("receipt_pdf", docs, patient)).status_code == 404


# --- refunds ---


def test_refund_request_form_posts_a_request(login_client, frontdesk, main_clinic):
    p = PatientFactory(home_location=main_clinic)
    give_credit(p, "15.00")
    response = login_client(frontdesk).post(
        route("refund_request", {}, p), {"amount": "15.00", "method": "check", "reason": "Overpaid"}
    )
    assert response.status_code == 302
    assert RefundRequest.objects.get().status == "requested"


def test_refund_request_above_the_credit_shows_the_error_on_the_amount(
    login_client, frontdesk, patient
):
    response = login_client(frontdesk).post(
        route("refund_request", {}, patient), {"amount": "15.00", "method": "check", "reason": "x"}
    )
    assert response.status_code == 200
    assert "must not exceed the credit balance" in response.content.decode()


def test_refund_request_access(login_client, persona, outsider, patient):
    assert (
        login_client(persona("meddirector")).get(route("refund_request", {}, patient)).status_code
        == 403
    )
    assert login_client(outsider).get(route("refund_request", {}, patient)).status_code == 404


def test_refund_list_shows_requests_at_the_approvers_locations_only(
    login_client, officemanager, frontdesk, river, docs, patient
):
    response = login_client(officemanager).get(route("refund_list", docs, patient))
    assert response.status_code == 200
    assert docs["refund"].patient.family_name in response.content.decode()
    away = login_client(river("medical_office_manager")).get(route("refund_list", docs, patient))
    assert away.status_code == 200
    assert docs["refund"].patient.family_name not in away.content.decode()
    assert login_client(frontdesk).get(route("refund_list", docs, patient)).status_code == 403


def test_a_second_person_approves_a_refund_and_it_is_posted(
    login_client, officemanager, docs, patient
):
    response = login_client(officemanager).post(
        route("refund_approve", docs, patient), {"note": ""}
    )
    assert response.status_code == 302
    docs["refund"].refresh_from_db()
    assert docs["refund"].status == "posted"
    assert account_balances(patient=docs["refund"].patient).patient_due == D("0.00")


def test_the_requester_is_told_someone_else_must_approve(login_client, persona, main_clinic):
    manager = persona("officemanager")
    p = PatientFactory(home_location=main_clinic)
    give_credit(p, "10.00")
    refund = services.refund_request(
        actor=manager, patient=p, amount="10.00", method="cash", reason="Asked"
    )
    client = login_client(manager)
    response = client.post(
        reverse("patientaccounts:refund_approve", args=[refund.public_id]), follow=True
    )
    assert "someone else must approve" in response.content.decode()
    refund.refresh_from_db()
    assert refund.status == "requested"


def test_rejecting_a_refund_needs_a_note(login_client, officemanager, docs, patient):
    client = login_client(officemanager)
    response = client.post(route("refund_reject", docs, patient), {"note": ""}, follow=True)
    assert "Enter why the refund is rejected" in response.content.decode()
    client.post(route("refund_reject", docs, patient), {"note": "Check not cleared"})
    docs["refund"].refresh_from_db()
    assert docs["refund"].status == "rejected"


def test_refund_decisions_need_the_capability_and_the_location(
    login_client, persona, river, docs, patient
):
    assert (
        login_client(persona("billing")).post(route("refund_approve", docs, patient)).status_code
        == 403
    )
    assert (
        login_client(river("medical_office_manager"))
        .post(route("refund_approve", docs, patient))
        .status_code
        == 404
    )
    docs["refund"].refresh_from_db()
    assert docs["refund"].status == "requested"


# --- payment plans ---


def test_plan_form_sets_up_a_plan_and_the_account_shows_what_remains(
    login_client, frontdesk, patient
):
    client = login_client(frontdesk)
    response = client.post(
        route("plan_create", {}, patient),
        {
            "total": "120.00",
            "instalment_amount": "40.00",
            "start_date": timezone.localdate().isoformat(),
        },
    )
    assert response.status_code == 302
    plan = patient.payment_plans.get()
    client.post(
        route("payment_take", {}, patient),
        {"amount": "40.00", "method": "cash", "plan": plan.pk, "idempotency_key": "p1"},
    )
    page = client.get(route("account", {}, patient)).content.decode()
    assert "$80.00" in page


def test_plan_form_errors_name_the_field(login_client, frontdesk, patient):
    response = login_client(frontdesk).post(
        route("plan_create", {}, patient),
        {"total": "500.00", "instalment_amount": "40.00", "start_date": ""},
    )
    html = response.content.decode()
    assert "Enter the first due date." in html


def test_plan_access(login_client, persona, outsider, patient):
    assert (
        login_client(persona("meddirector")).get(route("plan_create", {}, patient)).status_code
        == 403
    )
    assert login_client(outsider).get(route("plan_create", {}, patient)).status_code == 404


# --- statements ---


def test_make_statement_and_print_it_as_pdf(login_client, persona, patient):
    client = login_client(persona("billing"))
    assert client.post(route("statement_create", {}, patient)).status_code == 302
    statement = Statement.objects.get()
    response = client.get(reverse("patientaccounts:statement_pdf", args=[statement.public_id]))
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF")
    assert AuditEvent.objects.filter(event="statement.print", action="print").exists()


def test_statement_access(login_client, frontdesk, persona, river, patient, docs):
    assert login_client(frontdesk).post(route("statement_create", {}, patient)).status_code == 403
    assert (
        login_client(river("billing_specialist"))
        .post(route("statement_create", {}, patient))
        .status_code
        == 404
    )
    assert (
        login_client(persona("privacy")).get(route("statement_pdf", docs, patient)).status_code
        == 404
    )
    assert (
        login_client(river("billing_specialist"))
        .get(route("statement_pdf", docs, patient))
        .status_code
        == 404
    )


def test_statement_run_page_starts_a_run_and_shows_progress_polled_by_htmx(
    login_client, persona, patient, main_clinic, django_capture_on_commit_callbacks
):
    client = login_client(persona("billing"))
    assert client.get(reverse("patientaccounts:statement_runs")).status_code == 200
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("patientaccounts:statement_runs"),
            {
                "statement_date": timezone.localdate().isoformat(),
                "location": main_clinic.pk,
                "message": "Thank you",
            },
        )
    run = StatementRun.objects.get()
    assert response.status_code == 302
    page = client.get(response.url).content.decode()
    assert 'hx-trigger="every 2s"' in page
    assert "0 of 1" in page
    services.statement_run_execute(run_id=run.pk)
    partial = client.get(response.url, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in partial
    assert "1 of 1" in partial
    assert "hx-trigger" not in partial


def test_statement_run_access(login_client, frontdesk, persona, river, main_clinic, riverside):
    assert login_client(frontdesk).get(reverse("patientaccounts:statement_runs")).status_code == 403
    response = login_client(persona("billing")).post(
        reverse("patientaccounts:statement_runs"),
        {"statement_date": timezone.localdate().isoformat(), "location": riverside.pk},
    )
    assert response.status_code == 200
    assert "is-invalid" in response.content.decode()
    run = services.statement_run_start(
        actor=persona("billing"),
        location=main_clinic,
        statement_date=timezone.localdate(),
        enqueue=False,
    )
    url = reverse("patientaccounts:statement_run", args=[run.public_id])
    assert login_client(river("billing_specialist")).get(url).status_code == 404
    assert login_client(frontdesk).get(url).status_code == 404


# --- disputes ---


def test_dispute_open_update_note_and_letter(login_client, persona, patient):
    admin = persona("officeadmin")
    client = login_client(admin)
    response = client.post(
        route("dispute_open", {}, patient),
        {"reason": "duplicate", "disputed_amount": "30.00", "details": ""},
    )
    dispute = BillingDispute.objects.get()
    assert response.status_code == 302
    url = reverse("patientaccounts:dispute_detail", args=[dispute.public_id])
    assert client.get(url).status_code == 200
    response = client.post(url, {"status": "resolved", "owner": admin.pk, "resolution": ""})
    assert "Enter the resolution before closing" in response.content.decode()
    client.post(
        url, {"status": "resolved", "owner": admin.pk, "resolution": "Duplicate charge reversed"}
    )
    client.post(
        reverse("patientaccounts:dispute_note", args=[dispute.public_id]), {"text": "Letter sent"}
    )
    letter = client.get(
        reverse("patientaccounts:dispute_letter", args=[dispute.public_id, "resolution"])
    )
    assert letter.content.startswith(b"%PDF")
    dispute.refresh_from_db()
    assert dispute.status == "resolved"
    assert list(dispute.events.values_list("kind", flat=True)) == [
        "opened",
        "status",
        "note",
        "letter",
    ]
    assert AuditEvent.objects.filter(event="dispute.letter", action="print").exists()
    assert (
        client.get(
            reverse("patientaccounts:dispute_letter", args=[dispute.public_id, "threat"])
        ).status_code
        == 404
    )


def test_dispute_list_filters_by_status_and_location(
    login_client, persona, river, docs, patient, django_assert_max_num_queries
):
    client = login_client(persona("officeadmin"))
    with django_assert_max_num_queries(20):
        response = client.get(reverse("patientaccounts:dispute_list"))
    assert patient.family_name in response.content.decode()
    assert (
        patient.family_name
        not in client.get(
            reverse("patientaccounts:dispute_list") + "?status=resolved"
        ).content.decode()
    )
    away = login_client(river("medical_office_admin")).get(reverse("patientaccounts:dispute_list"))
    assert patient.family_name not in away.content.decode()


def test_dispute_access(login_client, frontdesk, river, docs, patient):
    assert login_client(frontdesk).get(reverse("patientaccounts:dispute_list")).status_code == 403
    assert login_client(frontdesk).get(route("dispute_open", docs, patient)).status_code == 403
    assert login_client(frontdesk).get(route("dispute_detail", docs, patient)).status_code == 404
    assert (
        login_client(frontdesk)
        .post(route("dispute_note", docs, patient), {"text": "x"})
        .status_code
        == 404
    )
    assert login_client(frontdesk).get(route("dispute_letter", docs, patient)).status_code == 404
    other = login_client(river("medical_office_admin"))
    assert other.get(route("dispute_open", docs, patient)).status_code == 404
    assert other.get(route("dispute_detail", docs, patient)).status_code == 404
    assert other.get(route("dispute_letter", docs, patient)).status_code == 404


# --- deposit report ---


def test_deposit_report_reconciles_with_the_ledger(
    login_client,
    persona,
    frontdesk,
    outsider,
    main_clinic,
    riverside,
    django_assert_max_num_queries,
):
    # given: payments by two users and methods, a posted refund, and a payment at another location
    admin = persona("officeadmin")
    manager = persona("officemanager")
    p1 = PatientFactory(home_location=main_clinic)
    post_charge(p1, "500.00")
    take_payment(p1, frontdesk, "40.00")
    take_payment(p1, frontdesk, "10.00")
    take_payment(p1, admin, "100.00", method="check", reference="2001")
    p2 = PatientFactory(home_location=main_clinic)
    take_payment(p2, frontdesk, "25.00")  # overpaid: a credit of 25
    refund = services.refund_request(
        actor=frontdesk, patient=p2, amount="25.00", method="check", reason="Overpaid"
    )
    services.refund_approve(actor=manager, refund=refund)
    take_payment(PatientFactory(home_location=riverside), outsider, "999.00")
    # when
    client = login_client(admin)
    with django_assert_max_num_queries(20):
        response = client.get(
            reverse("patientaccounts:deposit_report"),
            {"day": timezone.localdate().isoformat(), "location": main_clinic.code},
        )
    # then
    report = response.context["report"]
    assert [(r.user, r.method, r.count, r.total) for r in report.rows] == [
        ("frontdesk", "Cash", 3, D("75.00")),
        ("officeadmin", "Check", 1, D("100.00")),
    ]
    assert report.payments_total == D("175.00")
    assert report.refunds_total == D("25.00")
    assert report.net_total == D("150.00")
    assert report.ledger_total == report.net_total
    ledger = JournalEntry.objects.filter(patient__home_location=main_clinic)
    cash_in = ledger.filter(account="cash", transaction__kind="patient_payment").aggregate(
        t=Sum("amount")
    )["t"]
    refunded = ledger.filter(account="refunds", transaction__kind="refund").aggregate(
        t=Sum("amount")
    )["t"]
    assert report.net_total == cash_in + refunded  # refunds are credits (negative)
    assert "Reconciles with the ledger" in response.content.decode()
    assert AuditEvent.objects.filter(event="report.deposit", action="query").exists()


def test_deposit_report_access(login_client, frontdesk, persona, riverside):
    url = reverse("patientaccounts:deposit_report")
    assert login_client(frontdesk).get(url).status_code == 403
    response = login_client(persona("officeadmin")).get(
        url, {"day": "2026-01-01", "location": riverside.code}
    )
    assert response.status_code == 200
    assert response.context["report"] is None
    assert "Choose one of your locations" in response.content.decode()
    assert login_client(persona("servicedirector")).get(url).status_code == 200


def test_a_missing_pdf_library_gives_a_clear_message_not_a_crash(
    login_client, frontdesk, patient, docs, monkeypatch
):
    import sys

    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import fails as without Pango
    response = login_client(frontdesk).get(route("receipt_pdf", docs, patient))
    assert response.status_code == 503
    assert "install Pango" in response.content.decode()
