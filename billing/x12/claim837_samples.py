"""Made-up 837P claims for tests and benchmarks (no real people, no real identifiers).

`sample_claims(n)` gives a deterministic mix: subscribers who are the patient, dependents,
secondary claims with claim- and line-level adjustments, replacements and voids.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from billing.x12.claim837 import (
    Address,
    Adjustment,
    BillingProvider,
    Claim,
    LineAdjudication,
    OtherPayer,
    OtherSubscriber,
    Patient,
    Payer,
    Receiver,
    RenderingProvider,
    ServiceLine,
    Submitter,
    Subscriber,
)

CREATED_AT = dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC)
SERVICE_DATE = dt.date(2026, 1, 5)

CLINIC_ADDRESS = Address("100 Harbor Way", "Springfield", "IL", "627011234", line2="Suite 2")
BILLING_PROVIDER = BillingProvider(
    npi="1245319599",
    name="Harbor Family Medicine",
    taxonomy="207Q00000X",
    ein="123456789",
    address=CLINIC_ADDRESS,
)
SUBMITTER = Submitter(
    name="Harbor Family Medicine",
    identifier="HARBOR01",
    contact_name="Billing Office",
    phone="2175550100",
    email="billing@example.org",
)
RECEIVER = Receiver(name="Example Clearinghouse", identifier="CLEAR01")
PAYER = Payer("Acme Health Plan", "ACME1", Address("1 Insurance Plaza", "Chicago", "IL", "60601"))
OTHER_PAYER = Payer("Prairie Mutual", "PRAIRIE9")
RENDERING = RenderingProvider("1234567893", "Lopez", "Maria", "207Q00000X")
PROCEDURES = ("99213", "99214", "36415", "81002", "90471", "G0008", "J3301", "97110")


def subscriber(index: int = 0, **changes: object) -> Subscriber:
    values: dict[str, object] = {
        "member_id": f"MEM{index:08d}",
        "last_name": f"Testperson{index % 97}",
        "first_name": "Alex",
        "birth_date": dt.date(1970 + index % 40, 1 + index % 12, 1 + index % 28),
        "sex": "MF"[index % 2],
        "address": Address(f"{10 + index % 900} Oak Street", "Springfield", "IL", "62704"),
        "group_number": f"GRP{index % 50:03d}",
    }
    values.update(changes)
    return Subscriber(**values)  # type: ignore[arg-type]


def dependent(index: int = 0, **changes: object) -> Patient:
    values: dict[str, object] = {
        "last_name": f"Testperson{index % 97}",
        "first_name": "Sam",
        "relationship": "19",
        "birth_date": dt.date(2010 + index % 10, 1 + index % 12, 1 + index % 28),
        "sex": "FM"[index % 2],
        "address": Address(f"{10 + index % 900} Oak Street", "Springfield", "IL", "62704"),
    }
    values.update(changes)
    return Patient(**values)  # type: ignore[arg-type]


def line(index: int = 0, charge: str = "100.00", **changes: object) -> ServiceLine:
    values: dict[str, object] = {
        "procedure_code": PROCEDURES[index % len(PROCEDURES)],
        "charge": Decimal(charge),
        "units": Decimal(1),
        "service_date": SERVICE_DATE,
        "diagnosis_pointers": (1,),
    }
    values.update(changes)
    return ServiceLine(**values)  # type: ignore[arg-type]


def claim(index: int = 0, line_count: int = 4, **changes: object) -> Claim:
    values: dict[str, object] = {
        "patient_control_number": f"PD{index:010d}",
        "subscriber": subscriber(index),
        "payer": PAYER,
        "place_of_service": "11",
        "diagnoses": ("J44.9", "E11.9"),
        "lines": tuple(
            line(index + n, charge=f"{50 + (index + n) % 150}.{(index * 7 + n) % 100:02d}")
            for n in range(line_count)
        ),
        "rendering_provider": RENDERING,
    }
    values.update(changes)
    return Claim(**values)  # type: ignore[arg-type]


def secondary_claim(index: int = 0, triplets: int = 8, line_triplets: int | None = None) -> Claim:
    """A claim to the secondary payer after the primary paid part of every line."""
    per_line = triplets if line_triplets is None else line_triplets
    base = claim(index, line_count=2)
    reasons = ("45", "1", "2", "3", "23", "94", "97", "131", "253", "59")
    claim_adjustments = tuple(
        Adjustment("CO" if n % 2 == 0 else "PR", reasons[n % len(reasons)], Decimal("1.25"))
        for n in range(triplets)
    )
    adjudicated = []
    for service in base.lines:
        adjudicated.append(
            line(
                0,
                charge=str(service.charge),
                procedure_code=service.procedure_code,
                adjudications=(
                    LineAdjudication(
                        payer_id=OTHER_PAYER.payer_id,
                        paid_amount=Decimal("20.00"),
                        procedure_code=service.procedure_code,
                        units=service.units,
                        adjudication_date=dt.date(2026, 1, 12),
                        adjustments=tuple(
                            Adjustment("CO", reasons[n % len(reasons)], Decimal("0.50"))
                            for n in range(per_line)
                        ),
                    ),
                ),
            )
        )
    return Claim(
        patient_control_number=base.patient_control_number,
        subscriber=subscriber(index, responsibility="S", filing_indicator="CI"),
        payer=PAYER,
        place_of_service="11",
        diagnoses=base.diagnoses,
        lines=tuple(adjudicated),
        rendering_provider=RENDERING,
        other_payers=(
            OtherPayer(
                responsibility="P",
                relationship="18",
                filing_indicator="CI",
                subscriber=OtherSubscriber(f"PM{index:07d}", f"Testperson{index % 97}", "Alex"),
                payer=OTHER_PAYER,
                paid_amount=Decimal("40.00"),
                adjustments=claim_adjustments,
                remaining_patient_liability=Decimal("10.00"),
            ),
        ),
    )


def sample_claims(count: int, lines: int = 4) -> list[Claim]:
    """A deterministic mix: every 5th a dependent, 10th secondary, 50th a replacement."""
    claims: list[Claim] = []
    for index in range(count):
        if index % 10 == 9:
            claims.append(secondary_claim(index, triplets=3))
        elif index % 5 == 4:
            claims.append(claim(index, line_count=lines, patient=dependent(index)))
        elif index % 50 == 7:
            claims.append(
                claim(
                    index, line_count=lines, frequency_code="7", original_claim_number=f"ICN{index}"
                )
            )
        else:
            claims.append(claim(index, line_count=lines))
    return claims
