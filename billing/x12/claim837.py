"""What an X12 5010 837P (005010X222A1) needs, as plain frozen dataclasses.

These carry no database and no Django: `billing.export` maps models onto them and
`billing.x12.edi837.render_837p` writes them out. Amounts are `Decimal`, dates are `date`.
Free text (names, addresses) may hold anything; the renderer folds it to the X12 character set.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

# SBR09 / 2320 SBR09: claim filing indicator codes of 005010X222A1.
FILING_INDICATORS = frozenset(
    {
        "11", "12", "13", "14", "15", "16", "17", "AM", "BL", "CH", "CI", "DS", "FI", "HM",
        "LM", "MA", "MB", "MC", "OF", "TV", "VA", "WC", "ZZ",
    }
)  # fmt: skip
MEDICARE_FILING_INDICATORS = frozenset({"MA", "MB"})
# SBR05: Medicare secondary payer type codes (the only values the TR3 allows).
MEDICARE_SECONDARY_TYPES = frozenset({"12", "13", "14", "15", "16", "41", "42", "43", "47"})
# PAT01 (patient's relationship to the subscriber when the patient is not the subscriber).
PATIENT_RELATIONSHIPS = frozenset({"01", "19", "20", "21", "39", "40", "53", "G8"})
# 2320 SBR02 (patient's relationship to the other payer's subscriber).
OTHER_SUBSCRIBER_RELATIONSHIPS = frozenset({"01", "18", "19", "20", "21", "39", "40", "53", "G8"})
PAYER_RESPONSIBILITIES = frozenset({"P", "S", "T", "A", "B", "C", "D", "E", "F", "G", "H", "U"})
ADJUSTMENT_GROUPS = frozenset({"CO", "CR", "OA", "PI", "PR"})
FREQUENCY_CODES = frozenset({"1", "7", "8"})
SEX_CODES = frozenset({"M", "F", "U"})


@dataclass(frozen=True, slots=True)
class Address:
    line1: str
    city: str
    state: str
    postal_code: str
    line2: str = ""


@dataclass(frozen=True, slots=True)
class Submitter:
    """Loop 1000A: who sends the file (the practice or its billing service)."""

    name: str
    identifier: str  # NM109, the id the receiver assigned to us
    contact_name: str
    phone: str  # digits only
    email: str = ""


@dataclass(frozen=True, slots=True)
class Receiver:
    """Loop 1000B: the clearinghouse or payer receiving the file."""

    name: str
    identifier: str


@dataclass(frozen=True, slots=True)
class BillingProvider:
    """Loop 2000A/2010AA."""

    npi: str
    name: str  # organisation name, or the last name of a person
    taxonomy: str
    ein: str  # tax id, 9 digits
    address: Address  # a street address (no PO box) per the TR3
    first_name: str = ""  # set for a person (NM102 = 1)

    @property
    def is_person(self) -> bool:
        return bool(self.first_name)


@dataclass(frozen=True, slots=True)
class RenderingProvider:
    """Loop 2310B: the person who rendered the care, when not the billing provider."""

    npi: str
    last_name: str
    first_name: str
    taxonomy: str = ""
    middle_name: str = ""


@dataclass(frozen=True, slots=True)
class Payer:
    """Loop 2010BB (destination payer) and 2330B (other payer)."""

    name: str
    payer_id: str
    address: Address | None = None


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Loop 2000B/2010BA: the insured person of the destination payer's coverage."""

    member_id: str
    last_name: str
    first_name: str
    middle_name: str = ""
    birth_date: dt.date | None = None
    sex: str = "U"
    address: Address | None = None
    group_number: str = ""
    group_name: str = ""
    responsibility: str = "P"  # SBR01: P primary, S secondary, T tertiary
    filing_indicator: str = "CI"  # SBR09
    insurance_type: str = ""  # SBR05: only for Medicare as a non-primary payer


@dataclass(frozen=True, slots=True)
class Patient:
    """Loop 2000C/2010CA: the patient when they are not the subscriber."""

    last_name: str
    first_name: str
    relationship: str  # PAT01: 01 spouse, 19 child, 20 employee, 21 unknown, G8 other, ...
    birth_date: dt.date
    sex: str
    address: Address
    middle_name: str = ""


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One CAS triplet: group code (CO/CR/OA/PI/PR), CARC, amount (and optional quantity)."""

    group: str
    reason: str
    amount: Decimal
    quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OtherSubscriber:
    """Loop 2330A: the insured person of the other payer's coverage."""

    member_id: str
    last_name: str
    first_name: str
    middle_name: str = ""
    address: Address | None = None


@dataclass(frozen=True, slots=True)
class OtherPayer:
    """Loop 2320/2330A/2330B: a payer that adjudicated this claim before the destination payer."""

    responsibility: str  # SBR01 of that payer: P, S, T
    relationship: str  # SBR02: patient's relationship to that payer's subscriber (18 self)
    filing_indicator: str  # SBR09
    subscriber: OtherSubscriber
    payer: Payer
    paid_amount: Decimal  # AMT*D
    adjustments: tuple[Adjustment, ...] = ()  # claim-level CAS
    group_number: str = ""
    group_name: str = ""
    insurance_type: str = ""  # SBR05: only when this payer is Medicare and not primary
    remaining_patient_liability: Decimal | None = None  # AMT*EAF
    adjudication_date: dt.date | None = None  # 2330B DTP*573


@dataclass(frozen=True, slots=True)
class LineAdjudication:
    """Loop 2430: how another payer adjudicated one service line (SVD, CAS, DTP*573)."""

    payer_id: str  # must equal the 2330B payer id of one of the claim's other payers
    paid_amount: Decimal
    procedure_code: str
    units: Decimal
    adjudication_date: dt.date
    modifiers: tuple[str, ...] = ()
    adjustments: tuple[Adjustment, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceLine:
    """Loop 2400: LX, SV1, DTP*472 (and 2430 adjudications from other payers)."""

    procedure_code: str  # CPT/HCPCS
    charge: Decimal
    units: Decimal
    service_date: dt.date
    diagnosis_pointers: tuple[int, ...] = (1,)  # 1-based indexes into Claim.diagnoses, max 4
    modifiers: tuple[str, ...] = ()  # max 4
    place_of_service: str = ""  # SV105, only when it differs from the claim's
    service_date_end: dt.date | None = None  # a range (RD8) when set and after service_date
    adjudications: tuple[LineAdjudication, ...] = ()


@dataclass(frozen=True, slots=True)
class Claim:
    """Loop 2300 with everything a claim needs to stand on its own in a file."""

    patient_control_number: str  # CLM01, our claim id (max 38 characters)
    subscriber: Subscriber
    payer: Payer
    place_of_service: str  # CLM05-1
    diagnoses: tuple[str, ...]  # ICD-10-CM, the first is the principal (ABK), max 12
    lines: tuple[ServiceLine, ...]
    patient: Patient | None = None  # None: the subscriber is the patient
    frequency_code: str = "1"  # CLM05-3: 1 original, 7 replacement, 8 void
    original_claim_number: str = ""  # REF*F8, the payer's claim number, for 7 and 8
    rendering_provider: RenderingProvider | None = None
    other_payers: tuple[OtherPayer, ...] = ()
    provider_signature: bool = True  # CLM06
    assignment: str = "A"  # CLM07: A assigned, B lab services only, C not assigned
    benefits_assigned: str = "Y"  # CLM08: Y, N, W
    release_of_information: str = "Y"  # CLM09: Y or I
    prior_authorization: str = ""  # REF*G1

    @property
    def total_charge(self) -> Decimal:
        """CLM02: always the sum of the line charges."""
        return sum((line.charge for line in self.lines), Decimal("0"))
