"""Working denials: transitions, bulk assign, write-off, appeal letter, resubmission."""

from __future__ import annotations

from decimal import Decimal

import pytest

from audit.models import AuditEvent
from billing.models import Claim, ClaimFrequency, ClaimStatus
from patientaccounts.models import JournalEntry, LedgerAccount, TransactionKind
from patientaccounts.selectors import account_balances
from remittance import denials
from remittance.denials import DenialError
from remittance.models import AppealLetter, DenialNote, DenialStatus

from .denial_helpers import deny

pytestmark = pytest.mark.django_db


def test_a_denied_835_queues_an_open_denial_with_its_codes(make_claim):
    denial = deny(make_claim, "PD00000201")
    assert denial.is_overdue  # remittance of 2024-01-15 + 90 days
    assert (denial.status, denial.carc, denial.rarc, denial.amount) == (
        DenialStatus.OPEN,
        "50",
        "N115",
        Decimal("100.00"),
    )


def test_moves_from_open_to_in_progress_and_notes_the_step(make_claim, biller):
    denial = deny(make_claim, "PD00000202")
    denials.denial_set_status(actor=biller, denial=denial, to_status=DenialStatus.IN_PROGRESS)
    denial.refresh_from_db()
    assert denial.status == DenialStatus.IN_PROGRESS
    assert DenialNote.objects.filter(denial=denial, kind="status").count() == 1
    event = AuditEvent.objects.get(event="denial.status")
    assert event.patient_public_id == denial.claim.patient.public_id


def test_refuses_closing_an_open_denial(make_claim, biller):
    denial = deny(make_claim, "PD00000203")
    with pytest.raises(DenialError, match="open: it cannot become closed") as caught:
        denials.denial_set_status(actor=biller, denial=denial, to_status=DenialStatus.CLOSED)
    assert caught.value.field == "status"


def test_refuses_appealed_through_the_plain_status_change(make_claim, biller):
    denial = deny(make_claim, "PD00000204")
    with pytest.raises(DenialError, match="appeal letter"):
        denials.denial_set_status(actor=biller, denial=denial, to_status=DenialStatus.APPEALED)


def test_write_off_needs_a_reason(make_claim, biller):
    denial = deny(make_claim, "PD00000205")
    with pytest.raises(DenialError) as caught:
        denials.denial_set_status(actor=biller, denial=denial, to_status=DenialStatus.WRITTEN_OFF)
    assert caught.value.field == "reason"
    denial.refresh_from_db()
    assert denial.status == DenialStatus.OPEN


def test_write_off_takes_the_denied_amount_out_of_insurance_ar(make_claim, biller):
    # given a $100 denial held in insurance A/R
    denial = deny(make_claim, "PD00000206")
    patient = denial.claim.patient
    assert account_balances(patient=patient).insurance_pending == Decimal("100")
    # when it is written off
    denials.denial_set_status(
        actor=biller,
        denial=denial,
        to_status=DenialStatus.WRITTEN_OFF,
        reason="Past the appeal window",
    )
    # then the ledger has a balanced write-off and A/R is clear
    denial.refresh_from_db()
    assert denial.status == DenialStatus.WRITTEN_OFF
    txn = denial.write_off
    assert txn is not None
    assert txn.kind == TransactionKind.WRITE_OFF
    lines = sorted(JournalEntry.objects.filter(transaction=txn).values_list("account", "amount"))
    assert lines == [
        (LedgerAccount.INSURANCE_AR, Decimal("-100.00")),
        (LedgerAccount.OTHER_ADJUSTMENT, Decimal("100.00")),
    ]
    assert account_balances(patient=patient).insurance_pending == Decimal("0")
    denial.claim.refresh_from_db()
    assert denial.claim.status == ClaimStatus.CLOSED
    # and a written-off denial can only be closed
    denials.denial_set_status(actor=biller, denial=denial, to_status=DenialStatus.CLOSED)
    with pytest.raises(DenialError):
        denials.denial_set_status(actor=biller, denial=denial, to_status=DenialStatus.IN_PROGRESS)


def test_bulk_assign_gives_every_chosen_denial_to_the_owner(make_claim, biller, persona):
    # given
    first = deny(make_claim, "PD00000207")
    second = deny(make_claim, "PD00000208")
    director = persona("meddirector")
    # when
    changed = denials.denial_assign(actor=biller, denials=[first, second], owner=director)
    # then
    assert changed == 2
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.owner, second.owner) == (director, director)
    assert AuditEvent.objects.filter(event="denial.assign").count() == 2


def test_bulk_assign_refuses_an_owner_who_cannot_work_denials(make_claim, biller, frontdesk):
    denial = deny(make_claim, "PD00000209")
    with pytest.raises(DenialError, match="cannot work denials") as caught:
        denials.denial_assign(actor=biller, denials=[denial], owner=frontdesk)
    assert caught.value.field == "owner"
    denial.refresh_from_db()
    assert denial.owner is None


def test_a_user_who_cannot_work_denials_cannot_assign(make_claim, biller, frontdesk):
    denial = deny(make_claim, "PD00000210")
    with pytest.raises(DenialError, match="do not allow"):
        denials.denial_assign(actor=frontdesk, denials=[denial], owner=biller)


def test_notes_are_appended_with_author_and_refused_when_empty(make_claim, biller):
    denial = deny(make_claim, "PD00000211")
    denials.denial_add_note(actor=biller, denial=denial, text="Called the payer.")
    denials.denial_add_note(actor=biller, denial=denial, text="Waiting for records.")
    with pytest.raises(DenialError) as caught:
        denials.denial_add_note(actor=biller, denial=denial, text="   ")
    assert caught.value.field == "text"
    notes = list(
        DenialNote.objects.filter(denial=denial, kind="note").values_list("author", "text")
    )
    assert notes == [(biller.pk, "Called the payer."), (biller.pk, "Waiting for records.")]
    event = AuditEvent.objects.filter(event="denial.note").first()
    assert event is not None
    assert "Called" not in str(event.reason)


def test_appeal_renders_a_pdf_and_moves_claim_and_denial_to_appealed(make_claim, biller):
    # given
    denial = deny(make_claim, "PD00000212")
    # when
    letter = denials.denial_appeal(
        actor=biller, denial=denial, argument="The visit was medically necessary."
    )
    # then
    assert bytes(letter.pdf).startswith(b"%PDF")
    assert len(letter.sha256) == 64
    denial.refresh_from_db()
    denial.claim.refresh_from_db()
    assert (denial.status, denial.claim.status) == (DenialStatus.APPEALED, ClaimStatus.APPEALED)
    assert not denial.is_overdue  # the 2024 deadline was met by appealing
    assert AppealLetter.objects.filter(denial=denial, created_by=biller).count() == 1
    assert AuditEvent.objects.filter(event="denial.appeal_letter", action="print").exists()


def test_appeal_without_an_argument_changes_nothing(make_claim, biller):
    denial = deny(make_claim, "PD00000213")
    with pytest.raises(DenialError) as caught:
        denials.denial_appeal(actor=biller, denial=denial, argument="")
    assert caught.value.field == "argument"
    denial.claim.refresh_from_db()
    assert denial.claim.status == ClaimStatus.DENIED


def test_resubmit_creates_a_frequency_7_replacement(make_claim, biller):
    # given
    denial = deny(make_claim, "PD00000214")
    # when
    replacement = denials.denial_resubmit(actor=biller, denial=denial, note="Fixed the code.")
    # then
    assert replacement.frequency_code == ClaimFrequency.REPLACEMENT
    assert replacement.replaces_id == denial.claim_id
    assert replacement.status == ClaimStatus.DRAFT
    denial.refresh_from_db()
    assert (denial.status, denial.replacement_claim) == (DenialStatus.RESUBMITTED, replacement)
    assert Claim.objects.get(pk=denial.claim_id).status == ClaimStatus.RESUBMITTED


def test_a_resubmitted_denial_cannot_be_appealed(make_claim, biller):
    denial = deny(make_claim, "PD00000215")
    denials.denial_resubmit(actor=biller, denial=denial)
    with pytest.raises(DenialError, match="cannot be appealed"):
        denials.denial_appeal(actor=biller, denial=denial, argument="Please pay.")
