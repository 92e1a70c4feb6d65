"""A claim as a printable CMS-1500 (02/12) health insurance claim form, in PDF.

`cms1500_pages(claim)` maps a claim onto the form's numbered items, one `Cms1500Page` per six
service lines: the 1500 has six lines (item 24) and a claim with more lines is printed on more
forms. Following the NUCC 1500 Reference Instruction Manual, every page is a complete claim form
of its own: the same header items, its own lines, and its own total charge (item 28) and amount
paid (item 29) for the lines on that page only (no "continued" pages, no carried totals).
`render_cms1500(claim)` renders `billing/cms1500_pdf.html` with WeasyPrint
(`patientaccounts.pdf.render_pdf`, the house PDF helper).

The layout is a clean grid of the form's boxes with their numbers and captions, on plain Letter
paper: it is not the red OCR scanning form (drop-out ink) and not meant for a payer's scanner,
but for reading, filing and payers that accept a printed copy. Items the system does not record
stay empty: 14 (date of current illness), 17 (referring provider), 19 (additional claim
information), 23 (prior authorization) and the shaded supplemental areas of item 24. Items 10a-c
(condition related to employment or an accident) are marked NO, as the 837P sends no accident
data either. Diagnosis codes are printed without the decimal point, with ICD indicator 0
(ICD-10-CM); item 24E holds the diagnosis pointer letters A-L.

Item 29 holds what other payers paid (the claim's recorded prior payments): line-level payments
count on the page of their line; a claim-level payment with no line detail is printed on the
first page (it cannot be split by line). Patient payments are not included.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from billing.models import Claim, ClaimLine, ClaimPriorPayment
from billing.x12.claim837 import MEDICARE_FILING_INDICATORS
from patients.models import Coverage, Relationship

if TYPE_CHECKING:
    from patients.models import Patient

LINES_PER_PAGE = 6
TEMPLATE = "billing/cms1500_pdf.html"
POINTER_LETTERS = "ABCDEFGHIJKL"
# Item 1: the program, from the payer's claim filing indicator (837P SBR09).
PROGRAMS = (
    "Medicare", "Medicaid", "TRICARE", "CHAMPVA", "Group Health Plan", "FECA Blk Lung", "Other",
)  # fmt: skip
PROGRAM_BY_FILING_INDICATOR: dict[str, str] = {
    **dict.fromkeys(MEDICARE_FILING_INDICATORS, "Medicare"),
    "MC": "Medicaid",
    "CH": "TRICARE",
    "VA": "CHAMPVA",
    **dict.fromkeys(
        ("12", "13", "14", "15", "16", "17", "BL", "CI", "FI", "HM"), "Group Health Plan"
    ),
}
RELATIONSHIP_BOXES = ("Self", "Spouse", "Child", "Other")
RELATIONSHIP_BOX: dict[str, str] = {
    Relationship.SELF: "Self",
    Relationship.SPOUSE: "Spouse",
    Relationship.CHILD: "Child",
}


@dataclass(frozen=True)
class Person:
    """A name as the form prints it (last, first, middle), a birth date and sex."""

    last: str
    first: str
    middle: str = ""
    birth_date: dt.date | None = None
    sex: str = ""  # M, F or "" (the form has no box for unknown)

    @property
    def name(self) -> str:
        given = " ".join(part for part in (self.first, self.middle) if part)
        return f"{self.last}, {given}" if given else self.last


@dataclass(frozen=True)
class Address:
    line1: str
    line2: str
    city: str
    state: str
    postal_code: str
    phone: str = ""


@dataclass(frozen=True)
class OtherInsured:
    """Items 9, 9a and 9d: the patient's other coverage."""

    name: str
    policy_or_group: str
    plan_name: str


@dataclass(frozen=True)
class Line:
    """Item 24, one service line."""

    number: int
    date_from: dt.date
    date_to: dt.date
    place_of_service: str
    code: str
    modifiers: tuple[str, ...]
    pointers: str  # letters, e.g. "AB"
    charge: Decimal
    units: Decimal
    rendering_npi: str


@dataclass(frozen=True)
class Cms1500Page:
    number: int
    count: int
    lines: tuple[Line, ...]
    total_charge: Decimal  # item 28: this page's lines only
    amount_paid: Decimal  # item 29: this page's share of what other payers paid

    @property
    def blank_rows(self) -> range:
        """The empty rows of item 24 below this page's lines."""
        return range(LINES_PER_PAGE - len(self.lines))


@dataclass(frozen=True)
class Cms1500:
    """Everything the form shows; `pages` holds what differs per page."""

    program: str
    payer_name: str
    payer_address: Address | None
    insured_id: str  # 1a
    patient: Person  # 2, 3
    insured: Person  # 4, 11a
    patient_address: Address  # 5
    relationship: str  # 6
    insured_address: Address | None  # 7 (only when the insured is the patient)
    other_insured: OtherInsured | None  # 9, 9a, 9d
    group_number: str  # 11
    plan_name: str  # 11c
    another_plan: bool  # 11d
    signature_date: dt.date  # 12 (date), 31 (date)
    diagnoses: tuple[tuple[str, str], ...]  # 21: (letter, code), at most 12
    resubmission_code: str  # 22: 7 or 8, else ""
    original_reference: str  # 22: the payer's claim number of the original
    tax_id: str  # 25 (EIN)
    patient_account_number: str  # 26: our patient control number
    rendering_name: str  # 31
    facility_name: str  # 32
    facility_address: Address | None
    billing_name: str  # 33
    billing_address: Address
    billing_npi: str  # 33a
    billing_taxonomy: str  # 33b (ZZ qualifier)
    pages: tuple[Cms1500Page, ...]

    @property
    def total_charge(self) -> Decimal:
        return sum((page.total_charge for page in self.pages), Decimal("0.00"))


def _program(filing_indicator: str) -> str:
    return PROGRAM_BY_FILING_INDICATOR.get(filing_indicator, "Other")


def _sex(value: str) -> str:
    return value if value in ("M", "F") else ""


def _split_subscriber(coverage: Coverage, patient: Patient) -> Person:
    """The insured of a coverage: the patient for self, else the subscriber's name."""
    if coverage.relationship == Relationship.SELF or not coverage.subscriber_name.strip():
        return Person(
            patient.family_name,
            patient.given_name,
            patient.middle_name,
            patient.birth_date,
            _sex(patient.sex_at_birth),
        )
    from billing.export import split_name

    last, first = split_name(coverage.subscriber_name)
    return Person(last, first, birth_date=coverage.subscriber_birth_date)


def _other_coverage(claim: Claim) -> Coverage | None:
    """The patient's other active coverage (the first by order of benefits), for items 9/11d."""
    return (
        Coverage.objects.filter(patient_id=claim.patient_id, is_active=True)
        .exclude(pk=claim.coverage_id)
        .order_by("order", "-effective_start", "id")
        .first()
    )


def _line(line: ClaimLine, claim: Claim) -> Line:
    letters = "".join(
        POINTER_LETTERS[p - 1] for p in line.pointers if 1 <= p <= len(POINTER_LETTERS)
    )
    return Line(
        number=line.line_number,
        date_from=line.service_date,
        date_to=line.service_date,
        place_of_service=line.place_of_service or claim.place_of_service,
        code=line.code,
        modifiers=tuple(line.modifiers),
        pointers=letters,
        charge=line.charge,
        units=line.units,
        rendering_npi=claim.rendering_practitioner.npi,
    )


def _pages(claim: Claim) -> tuple[Cms1500Page, ...]:
    lines = list(claim.lines.order_by("line_number"))
    payments = list(ClaimPriorPayment.objects.filter(claim=claim).order_by("id"))
    paid_by_line: dict[int, Decimal] = {}
    for payment in payments:
        if payment.claim_line_id is not None:
            paid_by_line[payment.claim_line_id] = (
                paid_by_line.get(payment.claim_line_id, Decimal("0.00")) + payment.amount
            )
    # Per payer: its line payments when it has any, else its claim-level payment (1st page).
    line_payers = {p.payer_id for p in payments if p.claim_line_id is not None}
    claim_level = sum(
        (p.amount for p in payments if p.claim_line_id is None and p.payer_id not in line_payers),
        Decimal("0.00"),
    )
    chunks = [lines[i : i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)] or [[]]
    pages = []
    for index, chunk in enumerate(chunks):
        paid = sum((paid_by_line.get(line.pk, Decimal("0.00")) for line in chunk), Decimal("0.00"))
        if index == 0:
            paid += claim_level
        pages.append(
            Cms1500Page(
                number=index + 1,
                count=len(chunks),
                lines=tuple(_line(line, claim) for line in chunk),
                total_charge=sum((line.charge for line in chunk), Decimal("0.00")),
                amount_paid=paid,
            )
        )
    return tuple(pages)


def _address(row: Any, phone: str = "") -> Address:
    return Address(
        row.address_line1,
        getattr(row, "address_line2", ""),
        row.city,
        row.state,
        row.postal_code,
        phone,
    )


def cms1500_pages(claim: Claim, *, signed_on: dt.date) -> Cms1500:
    """The form for `claim` (read with its patient, coverage, payer, providers and location)."""
    patient, coverage, payer = claim.patient, claim.coverage, claim.payer
    provider, practitioner = claim.billing_provider, claim.rendering_practitioner
    location = claim.encounter.location
    insured = _split_subscriber(coverage, patient)
    other = _other_coverage(claim)
    other_insured = None
    if other is not None:
        other_insured = OtherInsured(
            name=_split_subscriber(other, patient).name,
            policy_or_group=other.group_number or other.member_id,
            plan_name=other.plan_name or other.payer_name,
        )
    codes = claim.encounter.diagnoses.order_by("position").values_list("code", flat=True)
    replaced = claim.replaces
    return Cms1500(
        program=_program(payer.claim_filing_indicator),
        payer_name=payer.name,
        payer_address=_address(payer) if payer.address_line1 else None,
        insured_id=coverage.member_id,
        patient=Person(
            patient.family_name,
            patient.given_name,
            patient.middle_name,
            patient.birth_date,
            _sex(patient.sex_at_birth),
        ),
        insured=insured,
        patient_address=_address(patient, patient.phone_home or patient.phone_mobile),
        relationship=RELATIONSHIP_BOX.get(coverage.relationship, "Other"),
        insured_address=(
            _address(patient, patient.phone_home or patient.phone_mobile)
            if coverage.relationship == Relationship.SELF
            else None
        ),
        other_insured=other_insured,
        group_number=coverage.group_number,
        plan_name=coverage.plan_name or coverage.payer_name,
        another_plan=other is not None,
        signature_date=signed_on,
        diagnoses=tuple(
            (letter, code.replace(".", ""))  # at most 12 (the scrubber's SCR-DX rule)
            for letter, code in zip(POINTER_LETTERS, codes, strict=False)
        ),
        resubmission_code=claim.frequency_code if claim.frequency_code in ("7", "8") else "",
        original_reference=(replaced.payer_claim_number if replaced is not None else "")
        if claim.frequency_code in ("7", "8")
        else "",
        tax_id=provider.tax_id,
        patient_account_number=claim.patient_control_number,
        rendering_name=" ".join(
            part
            for part in (
                practitioner.given_name,
                practitioner.family_name,
                practitioner.credentials,
            )
            if part
        ),
        facility_name=location.name,
        facility_address=_address(location) if location.address_line1 else None,
        billing_name=provider.name,
        billing_address=_address(provider, provider.phone),
        billing_npi=provider.npi,
        billing_taxonomy=provider.taxonomy_code,
        pages=_pages(claim),
    )


def cms1500_context(claim: Claim, *, signed_on: dt.date) -> dict[str, Any]:
    form = cms1500_pages(claim, signed_on=signed_on)
    return {
        "form": form,
        "claim": claim,
        "programs": PROGRAMS,
        "relationships": RELATIONSHIP_BOXES,
    }


def render_cms1500(claim: Claim, *, signed_on: dt.date) -> bytes:
    """The PDF bytes (raises patientaccounts.pdf.PdfUnavailableError without WeasyPrint)."""
    from patientaccounts.pdf import render_pdf

    return render_pdf(TEMPLATE, cms1500_context(claim, signed_on=signed_on))
