"""Resolving the unmatched queue: the claim payment posts as a matched one would have."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from billing.models import ClaimStatus
from billing.x12.edi835_samples import SampleClaim, SampleLine, SampleRemittance, render_835
from patientaccounts.selectors import account_balances
from remittance.models import ClaimRemittance, Denial, MatchMethod, UnmatchedRemittance
from remittance.services import UnmatchedError, remittance_ingest, unmatched_resolve

from .conftest import SERVICE_DATE

PAID = SampleLine(
    "99213",
    Decimal("100.00"),
    Decimal("70.00"),
    (("CO", "45", Decimal("20.00")), ("PR", "2", Decimal("10.00"))),
    service_date=SERVICE_DATE,
)
DENIED = SampleLine("99213", Decimal("100.00"), Decimal("0"), (("CO", "50", Decimal("100.00")),))


def unmatched_entry(line: SampleLine, status: str = "1") -> UnmatchedRemittance:
    claim = SampleClaim("GARBLED", (line,), status=status)
    data = render_835(SampleRemittance(claims=[claim])).encode()
    remittance_ingest(actor=None, data=data, file_name="era.835")
    return UnmatchedRemittance.objects.get()


def test_resolving_posts_the_payment_to_the_chosen_claim(make_claim, biller):
    # given a claim payment nobody could match, and the claim it belongs to
    claim = make_claim("PD00000101")
    entry = unmatched_entry(PAID)
    # when a biller resolves it
    resolved = unmatched_resolve(actor=biller, unmatched=entry, claim=claim)
    # then
    assert (resolved.status, resolved.resolved_by, resolved.resolved_claim) == (
        "resolved",
        biller,
        claim,
    )
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.PAID
    assert claim.paid_amount == Decimal("70")
    balances = account_balances(patient=claim.patient)
    assert (balances.insurance_pending, balances.patient_due) == (Decimal("0"), Decimal("10"))
    row = ClaimRemittance.objects.get()
    assert (row.claim, row.match_method) == (claim, MatchMethod.MANUAL)
    event = AuditEvent.objects.get(event="remittance.unmatched_resolve")
    assert event.patient_public_id == claim.patient.public_id


def test_a_resolved_entry_cannot_be_resolved_again(make_claim, biller):
    claim = make_claim("PD00000102")
    entry = unmatched_entry(PAID)
    unmatched_resolve(actor=biller, unmatched=entry, claim=claim)
    with pytest.raises(UnmatchedError, match="already resolved"):
        unmatched_resolve(actor=biller, unmatched=entry, claim=claim)
    assert account_balances(patient=claim.patient).patient_due == Decimal("10")


def test_resolving_a_denied_payment_queues_the_denial(make_claim, biller):
    claim = make_claim("PD00000103")
    entry = unmatched_entry(DENIED, status="4")
    unmatched_resolve(actor=biller, unmatched=entry, claim=claim)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.DENIED
    assert Denial.objects.get().claim == claim
    assert account_balances(patient=claim.patient).insurance_pending == Decimal("100")


def resolve_url(entry: UnmatchedRemittance) -> str:
    return reverse("remittance:unmatched_resolve", args=[entry.public_id])


def test_biller_applies_an_unmatched_payment_from_the_queue(make_claim, biller, login_client):
    # given
    claim = make_claim("PD00000201")
    entry = unmatched_entry(PAID)
    # when
    response = login_client(biller).post(
        resolve_url(entry), {"patient_control_number": " pd00000201 "}
    )
    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("remittance:unmatched_list")
    entry.refresh_from_db()
    assert (entry.status, entry.resolved_claim) == ("resolved", claim)


def test_an_unknown_control_number_is_shown_next_to_the_field(make_claim, biller, login_client):
    entry = unmatched_entry(PAID)
    response = login_client(biller).post(resolve_url(entry), {"patient_control_number": "NOPE1"})
    assert response.status_code == 400
    assert b"None of your claims has the number NOPE1." in response.content
    assert b"is-invalid" in response.content
    assert b"error-summary" in response.content
    entry.refresh_from_db()
    assert entry.status == "open"


def test_a_claim_of_another_location_is_not_found(make_claim, persona, login_client, riverside):
    # given a claim whose patient lives at another location than the biller's
    claim = make_claim("PD00000202")
    claim.patient.home_location = riverside
    claim.patient.save()
    entry = unmatched_entry(PAID)
    # when
    response = login_client(persona("billing")).post(
        resolve_url(entry), {"patient_control_number": "PD00000202"}
    )
    # then
    assert response.status_code == 400
    assert b"None of your claims has the number PD00000202." in response.content


@pytest.mark.parametrize("name", ["frontdesk", "officemanager", "outsider"])
def test_roles_without_remittance_work_cannot_resolve(make_claim, persona, login_client, name):
    make_claim("PD00000203")
    entry = unmatched_entry(PAID)
    response = login_client(persona(name)).post(
        resolve_url(entry), {"patient_control_number": "PD00000203"}
    )
    assert response.status_code == 403
    entry.refresh_from_db()
    assert entry.status == "open"


def test_resolve_answers_404_for_a_resolved_or_unknown_entry(make_claim, biller, login_client):
    claim = make_claim("PD00000204")
    entry = unmatched_entry(PAID)
    unmatched_resolve(actor=biller, unmatched=entry, claim=claim)
    client = login_client(biller)
    assert (
        client.post(resolve_url(entry), {"patient_control_number": "PD00000204"}).status_code == 404
    )
    unknown = reverse("remittance:unmatched_resolve", args=["00000000-0000-0000-0000-000000000000"])
    assert client.post(unknown, {"patient_control_number": "PD00000204"}).status_code == 404


def test_resolve_refuses_get_and_anonymous(db, client, biller, login_client):
    url = reverse("remittance:unmatched_resolve", args=["00000000-0000-0000-0000-000000000000"])
    assert login_client(biller).get(url).status_code == 405
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
