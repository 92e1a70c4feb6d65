"""Writes 835 files from plain claim specs: for tests, demo data and the ingest benchmark.

`render_835(...)` writes one interchange with one transaction set whose money balances (BPR02 =
claims paid - PLB, CLP03 - CLP04 = CAS, SVC02 - SVC03 = line CAS), with '~' terminators and a full
16-element BPR so that edi-835-parser (the benchmark's reference) reads it too.
`synthetic_claims(count, ...)` makes a deterministic mix of paid, partially paid, denied and
reversed claims. No database, no Django.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

_ZERO = Decimal("0")
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class SampleLine:
    code: str
    charge: Decimal
    paid: Decimal
    adjustments: tuple[tuple[str, str, Decimal], ...] = ()  # (group, CARC, amount)
    modifiers: tuple[str, ...] = ()
    units: Decimal = Decimal("1")
    service_date: dt.date = dt.date(2024, 1, 2)
    control_number: str = ""
    remark_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SampleClaim:
    patient_control_number: str
    lines: tuple[SampleLine, ...]
    status: str = "1"
    payer_claim_number: str = ""
    patient_last: str = "DOE"
    patient_first: str = "JANE"
    member_id: str = "M0001"
    adjustments: tuple[tuple[str, str, Decimal], ...] = ()  # claim level
    filing_indicator: str = "12"
    service_date: dt.date = dt.date(2024, 1, 2)

    @property
    def charge(self) -> Decimal:
        return sum((line.charge for line in self.lines), _ZERO)

    @property
    def paid(self) -> Decimal:
        claim_level = sum((a[2] for a in self.adjustments), _ZERO)
        return sum((line.paid for line in self.lines), _ZERO) - claim_level

    @property
    def patient_responsibility(self) -> Decimal:
        every = [*self.adjustments, *(a for line in self.lines for a in line.adjustments)]
        return sum((a[2] for a in every if a[0] == "PR"), _ZERO)


@dataclass(frozen=True)
class SamplePlb:
    reason: str
    amount: Decimal
    reference: str = ""


@dataclass(frozen=True)
class SampleRemittance:
    claims: Sequence[SampleClaim]
    trace: str = "TRACE0001"
    payer_name: str = "SAMPLE HEALTH PLAN"
    payer_id: str = "1999999999"
    payee_name: str = "SAMPLE CLINIC"
    payee_npi: str = "1234567893"
    payment_date: dt.date = dt.date(2024, 1, 15)
    method: str = "ACH"
    plb: Sequence[SamplePlb] = field(default_factory=tuple)
    control_number: str = "0001"
    interchange_number: int = 1

    @property
    def total(self) -> Decimal:
        return sum((c.paid for c in self.claims), _ZERO) - sum((p.amount for p in self.plb), _ZERO)


def _money(value: Decimal) -> str:
    text = f"{value.quantize(_CENT)}"
    return text[:-3] if text.endswith(".00") else text


def _cas(adjustments: Sequence[tuple[str, str, Decimal]]) -> list[str]:
    by_group: dict[str, list[tuple[str, Decimal]]] = {}
    for group, reason, amount in adjustments:
        by_group.setdefault(group, []).append((reason, amount))
    segments = []
    for group, pairs in by_group.items():
        for start in range(0, len(pairs), 6):
            chunk = pairs[start : start + 6]
            body = "*".join(f"{reason}*{_money(amount)}*" for reason, amount in chunk).rstrip("*")
            segments.append(f"CAS*{group}*{body}")
    return segments


def render_835(remittance: SampleRemittance) -> str:
    """One balanced 835 (ISA..IEA) as text, one segment per line."""
    r = remittance
    day = r.payment_date.strftime("%Y%m%d")
    total = r.total
    flag = "C" if total >= 0 else "D"
    handling = "I" if total != 0 else "H"
    method = r.method if total != 0 else "NON"
    number = f"{r.interchange_number:09d}"
    body = [
        "ST*835*" + r.control_number,
        f"BPR*{handling}*{_money(abs(total))}*{flag}*{method}*CCP*01*999999999*DA*123456"
        f"*1512345678**01*999988880*DA*98765*{day}",
        f"TRN*1*{r.trace}*1{r.payer_id[-9:]}",
        f"DTM*405*{day}",
        f"N1*PR*{r.payer_name}*XV*{r.payer_id}",
        "N3*PO BOX 1",
        "N4*ANYTOWN*NY*10001",
        "PER*BL*PROVIDER SERVICES*TE*8005551212",
        f"N1*PE*{r.payee_name}*XX*{r.payee_npi}",
        "LX*1",
    ]
    for claim in r.claims:
        body.append(
            f"CLP*{claim.patient_control_number}*{claim.status}*{_money(claim.charge)}"
            f"*{_money(claim.paid)}*{_money(claim.patient_responsibility)}"
            f"*{claim.filing_indicator}*{claim.payer_claim_number}*11*1"
        )
        body += _cas(claim.adjustments)
        body.append(f"NM1*QC*1*{claim.patient_last}*{claim.patient_first}****MI*{claim.member_id}")
        body.append(f"DTM*232*{claim.service_date.strftime('%Y%m%d')}")
        for line in claim.lines:
            code = ":".join(("HC", line.code, *line.modifiers))
            body.append(f"SVC*{code}*{_money(line.charge)}*{_money(line.paid)}**{line.units}")
            body.append(f"DTM*472*{line.service_date.strftime('%Y%m%d')}")
            body += _cas(line.adjustments)
            if line.control_number:
                body.append(f"REF*6R*{line.control_number}")
            allowed = line.charge - sum((a[2] for a in line.adjustments if a[0] == "CO"), _ZERO)
            body.append(f"AMT*B6*{_money(allowed)}")
            body += [f"LQ*HE*{code}" for code in line.remark_codes]
    for plb in r.plb:
        reference = f":{plb.reference}" if plb.reference else ""
        body.append(
            f"PLB*{r.payee_npi}*{r.payment_date.year}1231*{plb.reason}{reference}"
            f"*{_money(plb.amount)}"
        )
    body.append(f"SE*{len(body) + 1}*{r.control_number}")
    envelope_head = [
        f"ISA*00*          *00*          *ZZ*{'SAMPLEPAYER':<15}*ZZ*{'SAMPLECLINIC':<15}"
        f"*{r.payment_date.strftime('%y%m%d')}*1200*^*00501*{number}*0*P*:",
        f"GS*HP*SAMPLEPAYER*SAMPLECLINIC*{day}*1200*{r.interchange_number}*X*005010X221A1",
    ]
    envelope_tail = [f"GE*1*{r.interchange_number}", f"IEA*1*{number}"]
    return "~\n".join([*envelope_head, *body, *envelope_tail]) + "~\n"


def synthetic_claims(
    count: int, *, lines_per_claim: int = 3, seed: int = 0, prefix: str = "PCN"
) -> list[SampleClaim]:
    """`count` claims: mostly paid with CO-45 and PR-2/PR-3, every 10th denied (CO-50),
    every 25th paid partly with a claim-level CO-A2, each line with a control number."""
    rng = random.Random(seed)  # noqa: S311 - test data, not security
    claims = []
    for number in range(count):
        denied = number % 10 == 9
        lines = []
        for position in range(lines_per_claim):
            charge = Decimal(rng.randrange(5000, 50000)) / 100
            if denied:
                adjustments: tuple[tuple[str, str, Decimal], ...] = (("CO", "50", charge),)
                paid = _ZERO
            else:
                contractual = (charge * Decimal("0.2")).quantize(_CENT)
                share = (charge * Decimal("0.1")).quantize(_CENT)
                adjustments = (("CO", "45", contractual), ("PR", "2" if position else "3", share))
                paid = charge - contractual - share
            lines.append(
                SampleLine(
                    code=f"99{213 + position % 3}",
                    charge=charge,
                    paid=paid,
                    adjustments=adjustments,
                    modifiers=("25",) if position == 1 else (),
                    control_number=f"{prefix}{number:07d}-{position + 1}",
                    remark_codes=("N130",) if denied else (),
                )
            )
        claim_level: tuple[tuple[str, str, Decimal], ...] = ()
        if number % 25 == 24 and not denied:
            claim_level = (("CO", "A2", Decimal("1.00")),)
        claims.append(
            SampleClaim(
                patient_control_number=f"{prefix}{number:07d}",
                lines=tuple(lines),
                status="4" if denied else "1",
                payer_claim_number=f"ICN{number:010d}",
                member_id=f"M{number:08d}",
                adjustments=claim_level,
            )
        )
    return claims
