"""Medicare as a secondary (or tertiary) payer: the coverage's Medicare secondary payer type is
sent as SBR05, the scrubber stops a claim without it, and the coverage form takes it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.export import claims_export_837
from billing.models import Claim, ClaimPriorPayment, ClaimStatus
from billing.scrubber import scrub
from billing.tests.factories import ClaimFactory, PayerFactory
from billing.x12.validate import validate_837
from patients.forms import CoverageForm, PrimaryCoverageForm
from patients.models import Coverage, MedicareSecondaryType
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

MSP_FIELD = "medicare_secondary_type"


def segments(text: str) -> list[list[str]]:
    return [part.split("*") for part in text.split("~") if part.strip()]


def medicare_secondary_claim(msp_type: str, *, status: str = ClaimStatus.READY) -> Claim:
    """A claim to Medicare Part B as the secondary payer, after the primary paid."""
    primary_payer = PayerFactory(payer_id="PRIME1", claim_filing_indicator="CI")
    primary = ClaimFactory(payer=primary_payer, status=ClaimStatus.PAID, lines=1)
    medicare = PayerFactory(payer_id="13102", name="Medicare Part B", claim_filing_indicator="MB")
    claim = ClaimFactory(
        encounter=primary.encounter,
        payer=medicare,
        sequence="S",
        status=status,
        coverage__order=2,
        coverage__medicare_secondary_type=msp_type,
        lines=1,
    )
    paid_on = timezone.localdate() - dt.timedelta(days=1)
    ClaimPriorPayment.objects.create(
        claim=claim, source_claim=primary, payer=primary_payer, amount=Decimal("80.00"),
        paid_date=paid_on,
    )  # fmt: skip
    return claim


# ---- 837P ----------------------------------------------------------------------------------


def test_medicare_secondary_claim_carries_the_stored_type_as_sbr05_and_validates(tmp_path):
    # given
    claim = medicare_secondary_claim(MedicareSecondaryType.WORKING_AGED)

    # when
    result = claims_export_837(actor=None, payer=claim.payer, out_dir=tmp_path)

    # then
    assert result.skipped == []
    assert result.files[0].released
    text = result.files[0].path.read_text()
    assert validate_837(text).ok
    sbrs = [s for s in segments(text) if s[0] == "SBR"]
    assert sbrs[0][1] == "S"
    assert sbrs[0][5] == "12"
    assert sbrs[0][9] == "MB"
    assert sbrs[1][1] == "P"  # the primary (not Medicare): no SBR05
    assert sbrs[1][5] == ""


def test_medicare_secondary_claim_without_the_type_is_skipped_not_sent_blank(tmp_path):
    # given
    claim = medicare_secondary_claim("")

    # when
    result = claims_export_837(actor=None, payer=claim.payer, out_dir=tmp_path)

    # then
    assert result.files == []
    assert [pcn for pcn, _ in result.skipped] == [claim.patient_control_number]
    assert "SBR05" in result.skipped[0][1]
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.READY


def test_tertiary_claim_names_the_prior_medicare_secondary_type_in_its_other_payer_loop(
    tmp_path,
):
    # given: Medicare paid as secondary (type 43); the tertiary payer gets the claim next
    medicare_claim = medicare_secondary_claim("43", status=ClaimStatus.PAID)
    tertiary_payer = PayerFactory(payer_id="THIRD3", claim_filing_indicator="CI")
    claim = ClaimFactory(
        encounter=medicare_claim.encounter,
        payer=tertiary_payer,
        sequence="T",
        status=ClaimStatus.READY,
        coverage__order=3,
        lines=1,
    )
    ClaimPriorPayment.objects.create(
        claim=claim, source_claim=medicare_claim, payer=medicare_claim.payer,
        amount=Decimal("10.00"), paid_date=timezone.localdate() - dt.timedelta(days=1),
    )  # fmt: skip

    # when
    result = claims_export_837(actor=None, payer=tertiary_payer, out_dir=tmp_path)

    # then
    assert result.skipped == []
    text = result.files[0].path.read_text()
    assert validate_837(text).ok
    sbrs = [s for s in segments(text) if s[0] == "SBR"]
    assert sbrs[0][1] == "T"
    assert sbrs[0][5] == ""
    assert (sbrs[1][1], sbrs[1][5], sbrs[1][9]) == ("S", "43", "MB")


# ---- scrubber --------------------------------------------------------------------------------


def test_scrubber_stops_a_medicare_secondary_claim_without_the_type_naming_the_field():
    claim = medicare_secondary_claim("", status=ClaimStatus.DRAFT)

    problems = [p for p in scrub(claim) if p.rule_id == "SCR-MSP-001"]

    assert len(problems) == 1
    assert problems[0].severity == "error"
    assert problems[0].field == "coverage.medicare_secondary_type"
    assert "Medicare secondary payer type" in problems[0].message


def tertiary_after_medicare(msp_type: str) -> Claim:
    """A tertiary claim after Medicare paid as the secondary payer (with `msp_type`)."""
    medicare_claim = medicare_secondary_claim(msp_type, status=ClaimStatus.PAID)
    claim = ClaimFactory(
        encounter=medicare_claim.encounter,
        payer=PayerFactory(payer_id="THIRD3", claim_filing_indicator="CI"),
        sequence="T",
        coverage__order=3,
        lines=1,
    )
    for _ in range(2):  # a claim-level and a line-level row of the same payer
        ClaimPriorPayment.objects.create(
            claim=claim, source_claim=medicare_claim, payer=medicare_claim.payer,
            amount=Decimal("10.00"),
        )  # fmt: skip
    return claim


def test_scrubber_stops_a_claim_after_medicare_secondary_without_the_type_once():
    problems = [p for p in scrub(tertiary_after_medicare("")) if p.rule_id == "SCR-MSP-002"]

    assert [(p.field, p.severity) for p in problems] == [
        ("prior_coverage.medicare_secondary_type", "error")
    ]
    assert "13102" in problems[0].message


def test_scrubber_passes_a_claim_after_medicare_secondary_with_the_type():
    problems = scrub(tertiary_after_medicare("43"))

    assert not [p for p in problems if p.rule_id.startswith("SCR-MSP")]
    assert not [p for p in problems if p.rule_id == "SCR-SEC-001"]  # prior payments counted


def test_scrubber_passes_a_medicare_secondary_claim_with_the_type():
    claim = medicare_secondary_claim("12", status=ClaimStatus.DRAFT)

    assert not [p for p in scrub(claim) if p.rule_id == "SCR-MSP-001"]


def test_claim_without_the_type_cannot_be_made_ready(billing_user):
    # given
    claim = medicare_secondary_claim("", status=ClaimStatus.DRAFT)

    # when
    with pytest.raises(services.ClaimNotCleanError) as caught:
        services.claim_transition(actor=billing_user, claim=claim, to_status=ClaimStatus.READY)

    # then
    found = [p for p in caught.value.problems if p.rule_id == "SCR-MSP-001"]
    assert [p.field for p in found] == ["coverage.medicare_secondary_type"]
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.DRAFT


# ---- the coverage form -----------------------------------------------------------------------

FORM = {
    "payer_name": "Medicare Part B",
    "payer_identifier": "13102",
    "member_id": "1EG4TE5MK73",
    "relationship": "self",
    "order": "2",
    "is_active": "on",
}


def test_coverage_form_offers_the_tr3_codes_with_their_labels_and_says_when_needed():
    form = CoverageForm()

    field = form.fields[MSP_FIELD]
    codes = [code for code, _ in field.choices if code]
    assert codes == ["12", "13", "14", "15", "16", "41", "42", "43", "47"]
    assert dict(field.choices)["12"] == (
        "12 — Medicare Secondary Working Aged Beneficiary or Spouse with Employer Group Health Plan"
    )
    assert not field.required
    assert "Medicare is not the primary payer" in str(field.help_text)


def test_coverage_form_accepts_a_secondary_medicare_coverage_with_its_type():
    form = CoverageForm(FORM | {MSP_FIELD: "12"})

    assert form.is_valid(), form.errors
    assert form.cleaned_data[MSP_FIELD] == "12"


def test_coverage_form_refuses_an_unknown_code_naming_the_field():
    form = CoverageForm(FORM | {MSP_FIELD: "99"})

    assert not form.is_valid()
    assert MSP_FIELD in form.errors


def test_coverage_form_refuses_the_type_on_a_primary_coverage():
    form = CoverageForm(FORM | {"order": "1", MSP_FIELD: "12"})

    assert not form.is_valid()
    assert "primary coverage has no Medicare secondary payer type" in form.errors[MSP_FIELD][0]


def test_registration_primary_coverage_does_not_ask_for_the_type():
    assert MSP_FIELD not in PrimaryCoverageForm().fields


def test_saving_the_form_through_the_view_stores_the_type(client_as, patient):
    # given
    url = reverse("patients:coverage_add", args=[patient.public_id])

    # when
    response = client_as("billing").post(url, FORM | {MSP_FIELD: "12"})

    # then
    assert response.status_code == 302
    assert Coverage.objects.get(patient=patient).medicare_secondary_type == "12"
    page = client_as("billing").get(url).content.decode()
    assert 'name="medicare_secondary_type"' in page
    assert "Medicare secondary payer type" in page


def test_a_blank_type_never_gets_in_the_way_of_saving_a_coverage(client_as, patient):
    url = reverse("patients:coverage_add", args=[patient.public_id])

    response = client_as("billing").post(url, FORM | {MSP_FIELD: ""})

    assert response.status_code == 302
    assert Coverage.objects.get(patient=patient).medicare_secondary_type == ""


@pytest.fixture
def patient(main_clinic):
    return PatientFactory(home_location=main_clinic)


@pytest.fixture
def client_as(persona, login_client):
    return lambda name: login_client(persona(name))
