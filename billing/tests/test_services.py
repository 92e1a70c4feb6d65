"""Billing services: encounters, charges (fee lookup, ledger posting, corrections), claims."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from billing import services
from billing.models import (
    ChargeLine,
    Claim,
    ClaimEvent,
    ClaimFrequency,
    ClaimStatus,
    Encounter,
    EncounterStatus,
    FeeSchedule,
    Payer,
)
from billing.services import BillingError, LineInput
from billing.tests.factories import (
    ClaimBatchFactory,
    ClaimFactory,
    FeeScheduleEntryFactory,
    FeeScheduleFactory,
)
from patientaccounts.models import JournalEntry, LedgerAccount
from patients.models import Coverage, Patient
from patients.tests.factories import CoverageFactory
from scheduling.models import Practitioner

pytestmark = pytest.mark.django_db


def _ledger_sum(patient: Patient, account: str) -> Decimal:
    entries = JournalEntry.objects.filter(transaction__patient=patient, account=account)
    return sum((e.amount for e in entries), Decimal("0"))


class TestFeeLookup:
    def test_uses_the_payers_schedule_before_the_default_one(
        self, payer: Payer, fees: FeeSchedule
    ) -> None:
        # given
        own = FeeScheduleFactory(payer=payer, effective_start=dt.date(2024, 1, 1))
        FeeScheduleEntryFactory(schedule=own, code="99213", amount=Decimal("98.00"))

        # when
        fee = services.fee_lookup(payer=payer, code="99213", on=dt.date(2024, 6, 1))

        # then
        assert fee == Decimal("98.00")

    def test_falls_back_to_the_default_schedule_for_codes_the_payer_does_not_price(
        self, payer: Payer, fees: FeeSchedule
    ) -> None:
        own = FeeScheduleFactory(payer=payer, effective_start=dt.date(2024, 1, 1))
        FeeScheduleEntryFactory(schedule=own, code="99213", amount=Decimal("98.00"))

        assert services.fee_lookup(payer=payer, code="85025", on=dt.date(2024, 6, 1)) == Decimal(
            "25.00"
        )

    def test_picks_the_schedule_effective_on_the_date_of_service(self, payer: Payer) -> None:
        old = FeeScheduleFactory(
            effective_start=dt.date(2023, 1, 1), effective_end=dt.date(2023, 12, 31)
        )
        new = FeeScheduleFactory(effective_start=dt.date(2024, 1, 1))
        FeeScheduleEntryFactory(schedule=old, code="99213", amount=Decimal("100.00"))
        FeeScheduleEntryFactory(schedule=new, code="99213", amount=Decimal("110.00"))

        assert services.fee_lookup(payer=None, code="99213", on=dt.date(2023, 12, 31)) == Decimal(
            "100.00"
        )
        assert services.fee_lookup(payer=None, code="99213", on=dt.date(2024, 1, 1)) == Decimal(
            "110.00"
        )
        assert services.fee_lookup(payer=None, code="99213", on=dt.date(2022, 1, 1)) is None

    def test_prefers_the_entry_for_the_modifier(self, fees: FeeSchedule) -> None:
        day = dt.date(2024, 1, 1)
        assert services.fee_lookup(payer=None, code="20610", modifier="RT", on=day) == Decimal(
            "210.00"
        )
        assert services.fee_lookup(payer=None, code="20610", modifier="LT", on=day) == Decimal(
            "200.00"
        )


class TestEncounterCreate:
    def test_creates_an_encounter_without_an_appointment_with_ordered_diagnoses(
        self, billing_user: User, patient: Patient, practitioner: Practitioner, provider: object
    ) -> None:
        # when
        encounter = services.encounter_create(
            actor=billing_user,
            patient=patient,
            date_of_service=timezone.localdate(),
            rendering_practitioner=practitioner,
            diagnoses=["e11.9", "J45.909"],
        )

        # then
        assert encounter.appointment is None
        assert encounter.billing_provider == provider
        assert [(d.position, d.code, d.display_code) for d in encounter.diagnoses.all()] == [
            (1, "E119", "E11.9"),
            (2, "J45909", "J45.909"),
        ]
        assert AuditEvent.objects.filter(
            event="encounter.create", patient_public_id=patient.public_id
        ).exists()

    @pytest.mark.parametrize(
        ("codes", "field", "words"),
        [
            (["J45909", "J45"], "diagnoses.2", "J45 is a category"),
            (["XX99"], "diagnoses.1", "XX99 is not an ICD-10-CM code"),
            (["E11.9", "E119"], "diagnoses.2", "listed twice"),
        ],
    )
    def test_names_the_bad_diagnosis(
        self,
        billing_user: User,
        patient: Patient,
        practitioner: Practitioner,
        provider: object,
        codes: list[str],
        field: str,
        words: str,
    ) -> None:
        with pytest.raises(BillingError) as caught:
            services.encounter_create(
                actor=billing_user,
                patient=patient,
                date_of_service=timezone.localdate(),
                rendering_practitioner=practitioner,
                diagnoses=codes,
            )

        assert caught.value.field == field
        assert words in caught.value.message
        assert not Encounter.objects.exists()

    def test_rejects_a_date_of_service_in_the_future(
        self, billing_user: User, patient: Patient, practitioner: Practitioner, provider: object
    ) -> None:
        with pytest.raises(BillingError) as caught:
            services.encounter_create(
                actor=billing_user,
                patient=patient,
                date_of_service=timezone.localdate() + dt.timedelta(days=1),
                rendering_practitioner=practitioner,
            )

        assert caught.value.field == "date_of_service"

    def test_rejects_more_than_twelve_diagnoses(
        self, billing_user: User, patient: Patient, practitioner: Practitioner, provider: object
    ) -> None:
        codes = ["J45909", "E119", "I10", "E785", "M5450", "R051", "J069", "K219", "F419",
                 "G4700", "N390", "R109", "Z0000"]  # fmt: skip

        with pytest.raises(BillingError) as caught:
            services.encounter_create(
                actor=billing_user,
                patient=patient,
                date_of_service=timezone.localdate(),
                rendering_practitioner=practitioner,
                diagnoses=codes,
            )

        assert caught.value.field == "diagnoses"


class TestChargeLineAdd:
    def test_prices_the_line_from_the_fee_schedule_times_units_and_posts_it(
        self, billing_user: User, encounter: Encounter
    ) -> None:
        # when
        line = services.charge_line_add(
            actor=billing_user,
            encounter=encounter,
            line=LineInput(code="36415", units=2, pointers=[2, 1]),
        )

        # then
        assert line.amount == Decimal("24.00")
        assert line.fee_amount == Decimal("12.00")
        assert line.pointers == [2, 1]
        assert line.line_number == 1
        assert line.posted_at is not None
        assert _ledger_sum(encounter.patient, LedgerAccount.INSURANCE_AR) == Decimal("24.00")
        assert _ledger_sum(encounter.patient, LedgerAccount.GROSS_CHARGES) == Decimal("-24.00")

    def test_posts_to_patient_ar_when_the_patient_has_no_coverage(
        self, billing_user: User, encounter: Encounter, coverage: Coverage
    ) -> None:
        Coverage.objects.filter(pk=coverage.pk).update(is_active=False)

        services.charge_line_add(
            actor=billing_user, encounter=encounter, line=LineInput(code="99213")
        )

        assert _ledger_sum(encounter.patient, LedgerAccount.PATIENT_AR) == Decimal("120.00")

    def test_an_override_needs_a_reason(self, billing_user: User, encounter: Encounter) -> None:
        with pytest.raises(BillingError) as caught:
            services.charge_line_add(
                actor=billing_user,
                encounter=encounter,
                line=LineInput(code="99213", amount="90.00"),
            )

        assert caught.value.field == "override_reason"

    def test_an_override_with_a_reason_keeps_the_fee_beside_the_charge(
        self, billing_user: User, encounter: Encounter
    ) -> None:
        line = services.charge_line_add(
            actor=billing_user,
            encounter=encounter,
            line=LineInput(code="99213", amount="90.00", override_reason="Hardship discount"),
        )

        assert (line.amount, line.fee_amount) == (Decimal("90.00"), Decimal("120.00"))

    @pytest.mark.parametrize(
        ("line", "field"),
        [
            (LineInput(code="9921"), "code"),
            (LineInput(code="99213", units=0), "units"),
            (LineInput(code="99213", units="abc"), "units"),
            (LineInput(code="99213", pointers=[]), "pointers"),
            (LineInput(code="99213", pointers=[3]), "pointers"),
            (LineInput(code="99213", modifiers=["25", "59", "GA", "KX", "RT"]), "modifiers"),
            (LineInput(code="99213", modifiers=["2"]), "modifiers"),
            (LineInput(code="99499"), "amount"),
            (LineInput(code="99213", amount="-5"), "amount"),
        ],
    )
    def test_refuses_a_bad_line_naming_the_field(
        self, billing_user: User, encounter: Encounter, line: LineInput, field: str
    ) -> None:
        with pytest.raises(BillingError) as caught:
            services.charge_line_add(actor=billing_user, encounter=encounter, line=line)

        assert caught.value.field == field
        assert not ChargeLine.objects.exists()


class TestChargeLineCorrect:
    def test_reverses_the_original_and_adds_the_new_line(
        self, billing_user: User, encounter: Encounter
    ) -> None:
        # given
        original = services.charge_line_add(
            actor=billing_user, encounter=encounter, line=LineInput(code="99213")
        )

        # when
        reversal, new = services.charge_line_correct(
            actor=billing_user,
            line=original,
            reason="Wrong code",
            replacement=LineInput(code="85025"),
        )

        # then
        original.refresh_from_db()
        assert (original.code, original.amount) == ("99213", Decimal("120.00"))
        assert (reversal.units, reversal.amount, reversal.corrects) == (
            Decimal("-1"),
            Decimal("-120.00"),
            original,
        )
        assert new is not None
        assert new.code == "85025"
        assert services.billable_lines(encounter) == [new]
        assert _ledger_sum(encounter.patient, LedgerAccount.INSURANCE_AR) == Decimal("25.00")

    def test_a_line_is_corrected_only_once(self, billing_user: User, encounter: Encounter) -> None:
        original = services.charge_line_add(
            actor=billing_user, encounter=encounter, line=LineInput(code="99213")
        )
        services.charge_line_correct(actor=billing_user, line=original, reason="Wrong code")

        with pytest.raises(BillingError) as caught:
            services.charge_line_correct(actor=billing_user, line=original, reason="Again")

        assert "already corrected" in caught.value.message


class TestClaimCreate:
    def test_bills_the_primary_coverage_with_the_current_charges(
        self, billing_user: User, encounter: Encounter, coverage: Coverage, payer: Payer
    ) -> None:
        # given
        services.charge_line_add(
            actor=billing_user, encounter=encounter, line=LineInput(code="99213")
        )
        services.charge_line_add(
            actor=billing_user, encounter=encounter, line=LineInput(code="85025", pointers=[2])
        )

        # when
        claim = services.claim_create_from_encounter(actor=billing_user, encounter=encounter)

        # then
        assert (claim.coverage, claim.payer, claim.sequence) == (coverage, payer, "P")
        assert claim.status == ClaimStatus.DRAFT
        assert claim.patient_control_number == "PD00000001"
        assert claim.total_charge == Decimal("145.00")
        assert [line.code for line in claim.lines.all()] == ["99213", "85025"]
        assert claim.events.get().to_status == ClaimStatus.DRAFT
        encounter.refresh_from_db()
        assert encounter.status == EncounterStatus.BILLED

    def test_patient_control_numbers_are_never_reused(
        self, billing_user: User, encounter: Encounter
    ) -> None:
        services.charge_line_add(
            actor=billing_user, encounter=encounter, line=LineInput(code="99213")
        )
        first = services.claim_create_from_encounter(actor=billing_user, encounter=encounter)
        services.claim_void(actor=billing_user, claim=first)

        second = services.claim_create_from_encounter(actor=billing_user, encounter=encounter)

        assert second.patient_control_number == "PD00000002"

    def test_the_secondary_waits_for_the_primary_to_be_adjudicated(
        self, billing_user: User, encounter: Encounter, patient: Patient, payer: Payer
    ) -> None:
        # given
        secondary_payer = Payer.objects.create(name="Medicare", payer_id="04412")
        CoverageFactory(patient=patient, payer_name="Medicare", payer_identifier="04412", order=2)
        services.charge_line_add(
            actor=billing_user, encounter=encounter, line=LineInput(code="99213")
        )
        primary = services.claim_create_from_encounter(actor=billing_user, encounter=encounter)

        # when / then: refused before adjudication
        with pytest.raises(BillingError) as caught:
            services.claim_create_from_encounter(actor=billing_user, encounter=encounter)
        assert caught.value.field == "coverage"

        # when: the primary pays part
        Claim.objects.filter(pk=primary.pk).update(status=ClaimStatus.ACCEPTED)
        services.claim_transition(
            actor=billing_user, claim=primary, to_status=ClaimStatus.PARTIALLY_PAID
        )
        secondary = services.claim_create_from_encounter(actor=billing_user, encounter=encounter)

        # then
        assert (secondary.payer, secondary.sequence) == (secondary_payer, "S")

    def test_refuses_a_coverage_whose_payer_id_is_unknown(
        self, billing_user: User, encounter: Encounter, coverage: Coverage
    ) -> None:
        Coverage.objects.filter(pk=coverage.pk).update(payer_identifier="99999")
        services.charge_line_add(
            actor=billing_user, encounter=encounter, line=LineInput(code="99213")
        )

        with pytest.raises(BillingError) as caught:
            services.claim_create_from_encounter(actor=billing_user, encounter=encounter)

        assert "99999" in caught.value.message

    def test_refuses_a_visit_without_charges(
        self, billing_user: User, encounter: Encounter
    ) -> None:
        with pytest.raises(BillingError) as caught:
            services.claim_create_from_encounter(actor=billing_user, encounter=encounter)

        assert caught.value.field == "lines"


@pytest.fixture
def draft(billing_user: User, encounter: Encounter) -> Claim:
    services.charge_line_add(actor=billing_user, encounter=encounter, line=LineInput(code="99213"))
    return services.claim_create_from_encounter(actor=billing_user, encounter=encounter)


class TestClaimLifeCycle:
    def test_a_clean_claim_becomes_ready_and_its_timeline_and_trail_show_it(
        self, billing_user: User, draft: Claim
    ) -> None:
        # when
        claim = services.claim_mark_ready(actor=billing_user, claim=draft)

        # then
        assert claim.status == ClaimStatus.READY
        assert list(claim.events.values_list("from_status", "to_status")) == [
            ("", "draft"),
            ("draft", "ready"),
        ]
        assert AuditEvent.objects.filter(event="claim.status", reason="draft -> ready").exists()

    def test_a_claim_with_errors_stays_draft_and_lists_every_problem(
        self, billing_user: User, draft: Claim
    ) -> None:
        # given: no member id and no patient address
        Coverage.objects.filter(pk=draft.coverage_id).update(member_id="")
        Patient.objects.filter(pk=draft.patient_id).update(address_line1="", city="")

        # when
        with pytest.raises(services.ClaimNotCleanError) as caught:
            services.claim_mark_ready(actor=billing_user, claim=draft)

        # then
        fields = {problem.field for problem in caught.value.problems}
        assert {"coverage.member_id", "patient.address_line1", "patient.city"} <= fields
        draft.refresh_from_db()
        assert draft.status == ClaimStatus.DRAFT

    def test_scrub_keeps_the_problems_of_the_last_run(
        self, billing_user: User, draft: Claim
    ) -> None:
        Coverage.objects.filter(pk=draft.coverage_id).update(member_id="")
        services.claim_scrub(actor=billing_user, claim=draft)
        assert list(draft.problems.values_list("rule_id", flat=True)) == ["SCR-SUB-001"]

        Coverage.objects.filter(pk=draft.coverage_id).update(member_id="W1")
        services.claim_scrub(actor=billing_user, claim=draft)

        assert not draft.problems.exists()

    def test_refuses_a_transition_that_is_not_allowed(
        self, billing_user: User, draft: Claim
    ) -> None:
        with pytest.raises(BillingError) as caught:
            services.claim_transition(actor=billing_user, claim=draft, to_status=ClaimStatus.PAID)

        assert caught.value.message == "A draft claim cannot become paid."
        assert not ClaimEvent.objects.filter(to_status=ClaimStatus.PAID).exists()

    def test_refuses_an_unknown_status(self, billing_user: User, draft: Claim) -> None:
        with pytest.raises(BillingError):
            services.claim_transition(actor=billing_user, claim=draft, to_status="lost")

    def test_bulk_submission_marks_ready_claims_submitted(
        self, billing_user: User, draft: Claim
    ) -> None:
        services.claim_mark_ready(actor=billing_user, claim=draft)

        count = services.claims_mark_submitted(actor=billing_user, claims=[draft])

        draft.refresh_from_db()
        assert count == 1
        assert draft.status == ClaimStatus.SUBMITTED
        assert draft.submitted_at is not None

    def test_bulk_submission_refuses_claims_that_are_not_ready(
        self, billing_user: User, draft: Claim
    ) -> None:
        with pytest.raises(BillingError) as caught:
            services.claims_mark_submitted(actor=billing_user, claims=[draft])

        assert draft.patient_control_number in caught.value.message

    def test_replacing_a_denied_claim_makes_a_frequency_7_draft(
        self, billing_user: User, draft: Claim
    ) -> None:
        # given
        Claim.objects.filter(pk=draft.pk).update(
            status=ClaimStatus.DENIED, payer_claim_number="2206500001"
        )

        # when
        replacement = services.claim_replace(actor=billing_user, claim=draft)

        # then
        draft.refresh_from_db()
        assert draft.status == ClaimStatus.RESUBMITTED
        assert replacement.frequency_code == ClaimFrequency.REPLACEMENT
        assert replacement.replaces == draft
        assert replacement.status == ClaimStatus.DRAFT
        assert replacement.patient_control_number != draft.patient_control_number
        assert services.claim_scrub(actor=billing_user, claim=replacement) == []

    def test_voiding_a_submitted_claim_sends_a_frequency_8_copy(
        self, billing_user: User, draft: Claim
    ) -> None:
        Claim.objects.filter(pk=draft.pk).update(status=ClaimStatus.ACCEPTED)

        void = services.claim_void(actor=billing_user, claim=draft, note="Billed in error")

        draft.refresh_from_db()
        assert draft.status == ClaimStatus.VOID
        assert void is not None
        assert void.frequency_code == ClaimFrequency.VOID
        assert void.total_charge == draft.total_charge

    def test_voiding_a_draft_needs_no_payer_copy(self, billing_user: User, draft: Claim) -> None:
        assert services.claim_void(actor=billing_user, claim=draft) is None
        draft.refresh_from_db()
        assert draft.status == ClaimStatus.VOID

    def test_a_second_identical_claim_is_flagged_as_a_duplicate(
        self, billing_user: User, draft: Claim, encounter: Encounter
    ) -> None:
        # given: a second visit on the same day with the same code, to the same payer
        other = Encounter.objects.create(
            patient=encounter.patient,
            location=encounter.location,
            date_of_service=encounter.date_of_service,
            rendering_practitioner=encounter.rendering_practitioner,
            billing_provider=encounter.billing_provider,
        )
        other.diagnoses.create(position=1, code="J45909")
        services.charge_line_add(actor=billing_user, encounter=other, line=LineInput(code="99213"))
        second = services.claim_create_from_encounter(actor=billing_user, encounter=other)

        # when
        problems = services.claim_scrub(actor=billing_user, claim=second)

        # then
        assert [p.rule_id for p in problems] == ["SCR-DUP-001"]
        assert draft.patient_control_number in problems[0].message


class TestClaimsMarkSubmitted:
    """The export's bulk path: set-based, but every claim still gets its timeline row and its
    audit event, and a claim that is not ready is never overwritten."""

    def test_moves_every_ready_claim_with_one_timeline_row_and_one_audit_event_each(
        self, billing_user: User
    ) -> None:
        # given
        claims = ClaimFactory.create_batch(3, status=ClaimStatus.READY)
        batch = ClaimBatchFactory(payer=claims[0].payer, file_name="837P-60054-000000042.x12")
        audited_before = AuditEvent.objects.count()

        # when
        count = services.claims_mark_submitted(
            actor=billing_user, claim_ids=[c.pk for c in claims], batch=batch
        )

        # then
        assert count == 3
        for claim in claims:
            claim.refresh_from_db()
            assert claim.status == ClaimStatus.SUBMITTED
            assert claim.batch == batch
            assert claim.submitted_at == claim.status_changed_at
            (event,) = ClaimEvent.objects.filter(claim=claim)
            assert (event.from_status, event.to_status) == (ClaimStatus.READY, "submitted")
            assert event.actor == billing_user
            assert event.note == "In batch 837P-60054-000000042.x12."
        audits = AuditEvent.objects.filter(event="claim.status").order_by("sequence")
        assert AuditEvent.objects.count() == audited_before + 3
        assert {(a.object_id, str(a.patient_public_id)) for a in audits} == {
            (str(c.public_id), str(c.patient.public_id)) for c in claims
        }
        assert all(a.fields == ["status"] and a.username == billing_user.username for a in audits)

    def test_uses_the_same_number_of_queries_for_ten_claims_as_for_two(
        self, billing_user: User, django_assert_max_num_queries: Any
    ) -> None:
        # given
        two = ClaimFactory.create_batch(2, status=ClaimStatus.READY)
        ten = ClaimFactory.create_batch(10, status=ClaimStatus.READY)
        services.claims_mark_submitted(actor=billing_user, claims=two)  # warms the tail hint

        # when / then: select + update, events, audit lock/tail + insert (+ savepoints)
        with django_assert_max_num_queries(10):
            services.claims_mark_submitted(actor=billing_user, claims=ten)

    def test_refuses_the_whole_set_when_one_claim_is_not_ready(self, billing_user: User) -> None:
        # given
        ready: Claim = ClaimFactory(status=ClaimStatus.READY)
        paid: Claim = ClaimFactory(status=ClaimStatus.PAID)

        # when
        with pytest.raises(BillingError) as caught:
            services.claims_mark_submitted(actor=billing_user, claims=[ready, paid])

        # then
        assert caught.value.field == "claims"
        assert paid.patient_control_number in caught.value.message
        assert ready.patient_control_number not in caught.value.message
        ready.refresh_from_db()
        paid.refresh_from_db()
        assert (ready.status, paid.status) == (ClaimStatus.READY, ClaimStatus.PAID)
        assert ready.batch_id is None
        assert paid.submitted_at is None
        assert not ClaimEvent.objects.filter(claim__in=[ready, paid]).exists()
        assert not AuditEvent.objects.filter(event="claim.status").exists()

    def test_skips_and_refuses_a_claim_whose_status_changed_after_it_was_read(
        self, billing_user: User, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # given: another user denies the claim between the read and the UPDATE
        claim: Claim = ClaimFactory(status=ClaimStatus.READY)
        update = services.Claim.objects.filter(pk=claim.pk).values_list  # the read itself

        def read_then_change(*fields: str) -> Any:
            rows = list(update(*fields))
            Claim.objects.filter(pk=claim.pk).update(status=ClaimStatus.DENIED)
            return rows

        class ChangingManager:
            def filter(self, **kwargs: Any) -> Any:
                query = Claim._default_manager.filter(**kwargs)
                if "status" not in kwargs:
                    monkeypatch.setattr(query, "values_list", read_then_change)
                return query

        monkeypatch.setattr(services.Claim, "objects", ChangingManager())

        # when
        with pytest.raises(BillingError) as caught:
            services.claims_mark_submitted(actor=billing_user, claims=[claim])

        # then: the conditional UPDATE left the denied claim alone (0 rows), so the whole set
        # was refused and rolled back (the denial too, as it ran in the same transaction here)
        monkeypatch.undo()
        assert caught.value.message == (
            "Only ready claims can be submitted: a claim changed while they were submitted."
        )
        claim.refresh_from_db()
        assert claim.status != ClaimStatus.SUBMITTED
        assert claim.submitted_at is None
        assert not ClaimEvent.objects.filter(claim=claim).exists()

    def test_keeps_the_first_submission_time_of_a_claim_sent_again(
        self, billing_user: User
    ) -> None:
        # given
        first = timezone.now() - dt.timedelta(days=30)
        claim = ClaimFactory(status=ClaimStatus.READY, submitted_at=first)

        # when
        services.claims_mark_submitted(actor=billing_user, claim_ids=[claim.pk])

        # then
        claim.refresh_from_db()
        assert claim.status == ClaimStatus.SUBMITTED
        assert claim.submitted_at == first
        assert claim.status_changed_at > first

    def test_reports_claims_that_do_not_exist(self, billing_user: User) -> None:
        claim = ClaimFactory(status=ClaimStatus.READY)

        with pytest.raises(BillingError) as caught:
            services.claims_mark_submitted(actor=billing_user, claim_ids=[claim.pk, 987_654])

        assert "1 not found" in caught.value.message
        claim.refresh_from_db()
        assert claim.status == ClaimStatus.READY
