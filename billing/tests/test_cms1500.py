"""The CMS-1500 (02/12) PDF of a claim: its boxes, one form per six lines, access and audit."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import zlib
from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from audit.models import Action, AuditEvent, Outcome
from billing import cms1500
from billing.models import Claim, ClaimPriorPayment, ClaimStatus
from billing.tests.factories import ClaimFactory, PayerFactory

pytestmark = pytest.mark.django_db

SIGNED = dt.date(2026, 3, 20)


@pytest.fixture
def claim(encounter, payer) -> Claim:
    """Seven lines (charges 100.00 ... 106.00) for the patient at Main Street Clinic."""
    return ClaimFactory(encounter=encounter, payer=payer, lines=7, status=ClaimStatus.READY)


def url(claim: Claim) -> str:
    return reverse("billing:claim_cms1500", args=[claim.public_id])


def html_of(claim: Claim) -> str:
    return render_to_string(cms1500.TEMPLATE, cms1500.cms1500_context(claim, signed_on=SIGNED))


def page_count(pdf: bytes) -> int:
    """/Count of the PDF's page tree (WeasyPrint compresses it into an object stream)."""
    parts = [pdf]
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        with contextlib.suppress(zlib.error):
            parts.append(zlib.decompress(match.group(1)))
    counts = [
        int(found.group(1))
        for part in parts
        for tree in re.finditer(rb"<<[^<>]*/Type\s*/Pages\b[^<>]*>>", part)
        for found in re.finditer(rb"/Count\s+(\d+)", tree.group(0))
    ]
    assert len(counts) == 1, counts
    return counts[0]


def pdf_pages(claim: Claim) -> int:
    from weasyprint import HTML

    return len(HTML(string=html_of(claim)).render().pages)


# ---- the form's content -------------------------------------------------------------------------


def test_seven_lines_make_two_forms_each_totalling_only_its_own_lines(claim):
    form = cms1500.cms1500_pages(claim, signed_on=SIGNED)

    assert [len(page.lines) for page in form.pages] == [6, 1]
    assert [page.total_charge for page in form.pages] == [Decimal("615.00"), Decimal("106.00")]
    assert form.total_charge == claim.total_charge == Decimal("721.00")
    assert [(page.number, page.count) for page in form.pages] == [(1, 2), (2, 2)]
    assert pdf_pages(claim) == 2


def test_six_lines_fit_on_one_form(encounter, payer):
    claim = ClaimFactory(encounter=encounter, payer=payer, lines=6)

    form = cms1500.cms1500_pages(claim, signed_on=SIGNED)

    assert len(form.pages) == 1
    assert form.pages[0].total_charge == Decimal("615.00")
    assert pdf_pages(claim) == 1


def test_the_form_shows_account_number_npis_diagnoses_and_page_totals(claim):
    html = html_of(claim)

    assert claim.patient_control_number in html  # 26
    assert claim.billing_provider.npi in html  # 33a
    assert claim.rendering_practitioner.npi in html  # 24J
    assert "A. J45909" in html
    assert "B. E119" in html  # 21, no decimal point
    assert "$ 615.00" in html
    assert "$ 106.00" in html  # 28 of each form
    assert "721.00" not in html  # never a claim total carried over to the forms
    assert html.count("HEALTH INSURANCE CLAIM FORM") == 2
    assert "Rivera, Ana" in html  # 2
    assert "123456789" in html  # 25 (EIN)
    assert "not the red OCR scanning form" in html


def test_items_of_the_header_come_from_the_claim_and_its_coverages(claim, coverage):
    # given: a Medicare payer, a replacement claim, the patient's other coverage
    claim.payer.claim_filing_indicator = "MB"
    claim.payer.save()
    original = ClaimFactory(
        encounter=claim.encounter, payer=claim.payer, payer_claim_number="ICN-77"
    )
    Claim.objects.filter(pk=claim.pk).update(frequency_code="7", replaces=original)
    claim = Claim.objects.select_related("replaces").get(pk=claim.pk)

    # when
    form = cms1500.cms1500_pages(claim, signed_on=SIGNED)

    # then
    assert form.program == "Medicare"  # 1
    assert form.insured_id == claim.coverage.member_id  # 1a
    assert form.patient.name == "Rivera, Ana"  # 2
    assert form.relationship == "Self"  # 6
    assert (form.resubmission_code, form.original_reference) == ("7", "ICN-77")  # 22
    assert form.another_plan  # 11d: the fixture's coverage is another plan
    assert form.other_insured is not None
    assert form.other_insured.plan_name in (coverage.plan_name, coverage.payer_name)  # 9d
    assert form.diagnoses == (("A", "J45909"), ("B", "E119"))  # 21
    assert form.pages[0].lines[0].pointers == "A"  # 24E
    assert form.patient_account_number == claim.patient_control_number  # 26
    assert form.billing_npi == claim.billing_provider.npi  # 33a


def test_program_box_follows_the_claim_filing_indicator():
    assert cms1500.PROGRAM_BY_FILING_INDICATOR.get("MA") == "Medicare"
    assert cms1500.PROGRAM_BY_FILING_INDICATOR.get("MC") == "Medicaid"
    assert cms1500.PROGRAM_BY_FILING_INDICATOR.get("CI") == "Group Health Plan"
    assert "WC" not in cms1500.PROGRAM_BY_FILING_INDICATOR  # printed as Other


def test_amount_paid_counts_line_payments_on_their_page_and_claim_payments_on_the_first(claim):
    # given: the primary paid 30.00 on line 7 and another payer 12.50 for the claim as a whole
    primary = PayerFactory(payer_id="PRIME9")
    other = PayerFactory(payer_id="OTHER9")
    line7 = claim.lines.get(line_number=7)
    ClaimPriorPayment.objects.create(
        claim=claim, payer=primary, amount=Decimal("30.00"), claim_line=line7
    )
    ClaimPriorPayment.objects.create(claim=claim, payer=primary, amount=Decimal("30.00"))
    ClaimPriorPayment.objects.create(claim=claim, payer=other, amount=Decimal("12.50"))

    # when
    form = cms1500.cms1500_pages(claim, signed_on=SIGNED)

    # then: the primary's claim-level row repeats its line detail and is not counted twice
    assert [page.amount_paid for page in form.pages] == [Decimal("12.50"), Decimal("30.00")]


# ---- the view --------------------------------------------------------------------------------


def test_biller_gets_the_pdf_and_the_print_is_audited(login_client, billing_user, claim):
    # when
    response = login_client(billing_user).get(url(claim))

    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Cache-Control"] == "no-store"
    assert response.content.startswith(b"%PDF")
    assert page_count(response.content) == 2  # seven lines: two forms
    assert claim.patient_control_number in response["Content-Disposition"]
    event = AuditEvent.objects.get(event="claim.print_cms1500")
    assert event.action == Action.PRINT
    assert event.outcome == Outcome.SUCCESS
    assert event.patient_public_id == claim.patient.public_id


def test_a_user_without_billing_access_is_refused(login_client, persona, claim):
    response = login_client(persona("servicedirector")).get(url(claim))

    assert response.status_code == 403


def test_a_claim_of_another_location_is_404_and_audited(login_client, persona, claim):
    response = login_client(persona("outsider")).get(url(claim))

    assert response.status_code == 404
    assert AuditEvent.objects.filter(
        event="claim.print_cms1500", outcome=Outcome.DENIED, object_id=str(claim.public_id)
    ).exists()


def test_anonymous_users_are_sent_to_sign_in(client, claim):
    response = client.get(url(claim))

    assert response.status_code == 302
    assert "login" in response["Location"]


def test_post_is_405(login_client, billing_user, claim):
    assert login_client(billing_user).post(url(claim)).status_code == 405


def test_claim_page_links_to_the_pdf(login_client, billing_user, claim):
    html = login_client(billing_user).get(reverse("billing:claim", args=[claim.public_id]))

    assert f'href="{url(claim)}"' in html.content.decode()
    assert "CMS-1500 (PDF)" in html.content.decode()
