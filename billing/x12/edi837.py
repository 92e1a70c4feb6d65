"""Write X12 5010 837P (005010X222A1) claim files from `billing.x12.claim837` dataclasses.

Plain string building (lists and one join) for speed; pyx12 is used only to check the result
(`billing.x12.validate.validate_837`), never here. Delimiters are fixed: `*` between elements,
`:` between components, `^` for repetition, `~` after each segment. Free text is folded to
upper-case ASCII from the X12 basic character set, so a name can never carry a delimiter.

Where the TR3 has a rule the file format cannot enforce, `render_837p` refuses the claim with a
`Claim837Error` that names the claim and the field instead of writing a file a payer rejects:
SBR05 is written only (and then always) for Medicare as a non-primary payer, a replacement or
void claim must carry the payer's original claim number (REF*F8), CAS segments hold at most
six triplets each, diagnosis pointers must point at a diagnosis.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from unidecode import unidecode

from billing.x12.claim837 import (
    ADJUSTMENT_GROUPS,
    FILING_INDICATORS,
    FREQUENCY_CODES,
    MEDICARE_FILING_INDICATORS,
    MEDICARE_SECONDARY_TYPES,
    OTHER_SUBSCRIBER_RELATIONSHIPS,
    PATIENT_RELATIONSHIPS,
    PAYER_RESPONSIBILITIES,
    SEX_CODES,
    Address,
    Adjustment,
    BillingProvider,
    Claim,
    OtherPayer,
    Patient,
    Payer,
    Receiver,
    ServiceLine,
    Submitter,
    Subscriber,
)

VERSION = "005010X222A1"
ELEMENT = "*"
COMPONENT = ":"
REPETITION = "^"
TERMINATOR = "~"
MAX_TRIPLETS_PER_CAS = 6
MAX_CAS_SEGMENTS = 5  # per 2320 loop and per 2430 loop (the TR3's repeat count)
MAX_DIAGNOSES = 12
MAX_MODIFIERS = 4
MAX_POINTERS = 4
ISA_LENGTH = 106  # the ISA segment is fixed width, terminator included
MAX_CLAIMS_PER_TRANSACTION = 5000  # the TR3's limit of CLM segments per ST

# Everything outside the X12 basic character set (after upper-casing) and the delimiters.
_NOT_BASIC = re.compile(r"""[^A-Z0-9!"&'()+,\-./;?= ]+""")
_SPACES = re.compile(r" {2,}")
_NOT_ID = re.compile(r"[^A-Z0-9]+")


class Claim837Error(ValueError):
    """A claim (or the envelope) that cannot be written as a valid 837P; the message says why."""


@functools.lru_cache(maxsize=65536)
def clean_text(value: str, max_length: int = 60) -> str:
    """Upper-case ASCII from the basic character set, delimiters removed, spaces collapsed."""
    if not value:
        return ""
    if not value.isascii():
        value = unidecode(value)
    value = _NOT_BASIC.sub(" ", value.upper())
    if "  " in value:
        value = _SPACES.sub(" ", value)
    return value.strip()[:max_length].rstrip()


@functools.lru_cache(maxsize=65536)
def clean_id(value: str, max_length: int = 80) -> str:
    """Identifiers and codes: upper-case letters and digits only (ICD-10 dots go too)."""
    return _NOT_ID.sub("", value.upper())[:max_length] if value else ""


@functools.lru_cache(maxsize=16384)
def money(amount: Decimal) -> str:
    """X12 R type: at most two decimals, no trailing zeros after the point ("40", "40.5")."""
    text = f"{amount:.2f}"
    if text.endswith("00"):
        return text[:-3]
    if text.endswith("0"):
        return text[:-1]
    return text


@functools.lru_cache(maxsize=1024)
def quantity(value: Decimal) -> str:
    return format(value.normalize(), "f")


def segment(*elements: str) -> str:
    """Join elements with `*`, dropping trailing empty ones (X12 forbids trailing separators)."""
    items = list(elements)
    while items and items[-1] == "":
        items.pop()
    return ELEMENT.join(items)


@functools.lru_cache(maxsize=8192)
def _d8(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def _address(address: Address | None) -> list[str]:
    if address is None:
        return []
    line2 = clean_text(address.line2, 55)
    n3 = f"N3*{clean_text(address.line1, 55)}" + (f"*{line2}" if line2 else "")
    n4 = f"N4*{clean_text(address.city, 30)}*{clean_id(address.state, 2)}*" + clean_id(
        address.postal_code, 15
    )
    return [n3, n4]


def _person_nm1(code: str, last: str, first: str, middle: str, qualifier: str, ident: str) -> str:
    return segment(
        "NM1",
        code,
        "1",
        clean_text(last, 60),
        clean_text(first, 35),
        clean_text(middle, 25),
        "",
        "",
        qualifier,
        clean_id(ident, 80),
    )


def _org_nm1(code: str, name: str, qualifier: str, ident: str) -> str:
    return f"NM1*{code}*2*{clean_text(name, 60)}*****{qualifier}*{clean_id(ident, 80)}"


def _cas_segments(adjustments: Sequence[Adjustment], where: str) -> list[str]:
    """CAS segments: one group code per segment, at most six triplets each."""
    by_group: dict[str, list[Adjustment]] = {}
    for adjustment in adjustments:
        if adjustment.group not in ADJUSTMENT_GROUPS:
            raise Claim837Error(f"{where}: CAS group code {adjustment.group!r} is not valid")
        if not clean_id(adjustment.reason, 5):
            raise Claim837Error(f"{where}: CAS reason code is missing")
        by_group.setdefault(adjustment.group, []).append(adjustment)
    out: list[str] = []
    for group, items in by_group.items():
        for start in range(0, len(items), MAX_TRIPLETS_PER_CAS):
            parts = ["CAS", group]
            for item in items[start : start + MAX_TRIPLETS_PER_CAS]:
                parts += [
                    clean_id(item.reason, 5),
                    money(item.amount),
                    quantity(item.quantity) if item.quantity is not None else "",
                ]
            out.append(segment(*parts))
    if len(out) > MAX_CAS_SEGMENTS:
        raise Claim837Error(
            f"{where}: {len(out)} CAS segments needed, the 837P allows {MAX_CAS_SEGMENTS}"
        )
    return out


def _sbr05(filing_indicator: str, responsibility: str, insurance_type: str, where: str) -> str:
    """SBR05 is used only (and then required) for Medicare when it is not the primary payer."""
    if filing_indicator in MEDICARE_FILING_INDICATORS and responsibility != "P":
        if insurance_type not in MEDICARE_SECONDARY_TYPES:
            raise Claim837Error(
                f"{where}: Medicare as a non-primary payer needs the Medicare secondary payer "
                f"type (SBR05, one of {', '.join(sorted(MEDICARE_SECONDARY_TYPES))})"
            )
        return insurance_type
    return ""


@functools.lru_cache(maxsize=8192)
def _line_problem(line: ServiceLine, diagnosis_count: int) -> str:
    """What makes this service line unwritable in a claim of `diagnosis_count` diagnoses
    ("" when nothing): equal lines are checked once."""
    if len(line.modifiers) > MAX_MODIFIERS:
        return f"at most {MAX_MODIFIERS} modifiers"
    if not line.diagnosis_pointers or len(line.diagnosis_pointers) > MAX_POINTERS:
        return f"1 to {MAX_POINTERS} diagnosis pointers"
    for pointer in line.diagnosis_pointers:
        if not 1 <= pointer <= diagnosis_count:
            return f"diagnosis pointer {pointer} points at no diagnosis"
    if not clean_id(line.procedure_code):
        return "the procedure code is missing"
    if line.charge < 0 or line.units <= 0:
        return "charge and units must be positive"
    return ""


def check_claim(claim: Claim) -> None:
    """Raise Claim837Error if this claim cannot be written as a valid 837P."""
    where = f"claim {claim.patient_control_number!r}"
    if not clean_id(claim.patient_control_number, 38) or len(claim.patient_control_number) > 38:
        raise Claim837Error(f"{where}: the patient control number must be 1-38 characters")
    if not claim.lines:
        raise Claim837Error(f"{where}: a claim needs at least one service line")
    if len(claim.lines) > 50:
        raise Claim837Error(f"{where}: an 837P claim holds at most 50 service lines")
    if not claim.diagnoses or len(claim.diagnoses) > MAX_DIAGNOSES:
        raise Claim837Error(f"{where}: a claim needs 1 to {MAX_DIAGNOSES} diagnoses")
    if claim.frequency_code not in FREQUENCY_CODES:
        raise Claim837Error(f"{where}: frequency code must be 1, 7 or 8")
    if claim.frequency_code != "1" and not clean_id(claim.original_claim_number):
        raise Claim837Error(
            f"{where}: a replacement (7) or void (8) needs the payer's original claim number"
        )
    if claim.subscriber.filing_indicator not in FILING_INDICATORS:
        raise Claim837Error(f"{where}: claim filing indicator (SBR09) is not valid")
    if claim.subscriber.responsibility not in PAYER_RESPONSIBILITIES:
        raise Claim837Error(f"{where}: payer responsibility (SBR01) is not valid")
    if claim.patient is not None and claim.patient.relationship not in PATIENT_RELATIONSHIPS:
        raise Claim837Error(f"{where}: patient relationship (PAT01) is not valid")
    for person in (claim.subscriber, claim.patient):
        if person is not None and person.sex not in SEX_CODES:
            raise Claim837Error(f"{where}: sex must be M, F or U")
        if person is not None and not clean_text(person.last_name):
            raise Claim837Error(f"{where}: a last name is missing")
    if not clean_id(claim.subscriber.member_id):
        raise Claim837Error(f"{where}: the subscriber's member id is missing")
    if claim.patient is None and claim.subscriber.address is None:
        raise Claim837Error(f"{where}: the subscriber (the patient) needs an address")
    if claim.patient is None and claim.subscriber.birth_date is None:
        raise Claim837Error(f"{where}: the subscriber (the patient) needs a date of birth")
    if not clean_id(claim.payer.payer_id) or not clean_text(claim.payer.name):
        raise Claim837Error(f"{where}: the payer's name and id are required")
    if any(not clean_id(code) for code in claim.diagnoses):
        raise Claim837Error(f"{where}: a diagnosis code is empty")
    if not clean_id(claim.place_of_service):
        raise Claim837Error(f"{where}: the place of service is missing")
    rendering = claim.rendering_provider
    if rendering is not None and (
        len(clean_id(rendering.npi)) != 10 or not clean_text(rendering.last_name)
    ):
        raise Claim837Error(f"{where}: the rendering provider needs a 10-digit NPI and a name")
    subscriber = claim.subscriber
    _sbr05(subscriber.filing_indicator, subscriber.responsibility, subscriber.insurance_type, where)
    diagnosis_count = len(claim.diagnoses)
    for number, line in enumerate(claim.lines, start=1):
        problem = _line_problem(line, diagnosis_count)
        if problem:
            raise Claim837Error(f"{where}, line {number}: {problem}")
    other_ids = {clean_id(other.payer.payer_id) for other in claim.other_payers}
    for other in claim.other_payers:
        if other.relationship not in OTHER_SUBSCRIBER_RELATIONSHIPS:
            raise Claim837Error(f"{where}: other payer relationship (2320 SBR02) is not valid")
        if other.filing_indicator not in FILING_INDICATORS:
            raise Claim837Error(f"{where}: other payer filing indicator is not valid")
        if other.responsibility not in PAYER_RESPONSIBILITIES:
            raise Claim837Error(f"{where}: other payer responsibility (2320 SBR01) is not valid")
        _sbr05(other.filing_indicator, other.responsibility, other.insurance_type, where)
        _cas_segments(other.adjustments, f"{where}, other payer {other.payer.payer_id}")
    for number, line in enumerate(claim.lines, start=1):
        for adjudication in line.adjudications:
            _cas_segments(adjudication.adjustments, f"{where}, line {number}")
            if clean_id(adjudication.payer_id) not in other_ids:
                raise Claim837Error(
                    f"{where}, line {number}: line adjudication by payer "
                    f"{adjudication.payer_id!r}, which is not one of the claim's other payers"
                )


def _other_payer(other: OtherPayer, where: str) -> list[str]:
    out = [
        segment(
            "SBR",
            other.responsibility,
            other.relationship,
            clean_text(other.group_number, 50),
            "" if other.group_number else clean_text(other.group_name, 60),
            _sbr05(other.filing_indicator, other.responsibility, other.insurance_type, where),
            "",
            "",
            "",
            other.filing_indicator,
        )
    ]
    out += _cas_segments(other.adjustments, f"{where}, other payer {other.payer.payer_id}")
    out.append(f"AMT*D*{money(other.paid_amount)}")
    if other.remaining_patient_liability is not None:
        out.append(f"AMT*EAF*{money(other.remaining_patient_liability)}")
    out.append("OI***Y***Y")
    sub = other.subscriber
    out.append(
        _person_nm1("IL", sub.last_name, sub.first_name, sub.middle_name, "MI", sub.member_id)
    )
    out += _address(sub.address)
    out.append(_org_nm1("PR", other.payer.name, "PI", other.payer.payer_id))
    out += _address(other.payer.address)
    if other.adjudication_date is not None:
        out.append(f"DTP*573*D8*{_d8(other.adjudication_date)}")
    return out


@functools.lru_cache(maxsize=8192)
def _service_segments(line: ServiceLine) -> tuple[str, str]:
    """SV1 and DTP*472 of a service line: equal lines (same code, charge, units, date, ...)
    are written once per process, which a batch of one day's visits mostly consists of."""
    procedure = "HC:" + clean_id(line.procedure_code, 48)
    if line.modifiers:
        procedure += "".join(":" + clean_id(mod, 2) for mod in line.modifiers)
    pointers = ":".join(str(pointer) for pointer in line.diagnosis_pointers)
    pos = clean_id(line.place_of_service, 2)
    sv1 = f"SV1*{procedure}*{money(line.charge)}*UN*{quantity(line.units)}*{pos}**{pointers}"
    end = line.service_date_end
    if end is not None and end > line.service_date:
        return sv1, f"DTP*472*RD8*{_d8(line.service_date)}-{_d8(end)}"
    return sv1, f"DTP*472*D8*{_d8(line.service_date)}"


def _claim(claim: Claim) -> list[str]:
    """Loops 2300-2430 of one claim."""
    where = f"claim {claim.patient_control_number!r}"
    clm09 = "Y" if claim.release_of_information == "Y" else "I"
    out = [
        f"CLM*{clean_text(claim.patient_control_number, 38)}*{money(claim.total_charge)}***"
        f"{clean_id(claim.place_of_service, 2)}:B:{claim.frequency_code}*"
        f"{'Y' if claim.provider_signature else 'N'}*{claim.assignment}*"
        f"{claim.benefits_assigned}*{clm09}"
    ]
    if claim.frequency_code != "1":
        out.append(f"REF*F8*{clean_id(claim.original_claim_number, 50)}")
    if claim.prior_authorization:
        out.append(f"REF*G1*{clean_id(claim.prior_authorization, 50)}")
    codes = [clean_id(code, 30) for code in claim.diagnoses]
    out.append("HI*ABK:" + codes[0] + "".join(f"*ABF:{code}" for code in codes[1:]))
    rendering = claim.rendering_provider
    if rendering is not None:
        out.append(
            _person_nm1(
                "82",
                rendering.last_name,
                rendering.first_name,
                rendering.middle_name,
                "XX",
                rendering.npi,
            )
        )
        if rendering.taxonomy:
            out.append(f"PRV*PE*PXC*{clean_id(rendering.taxonomy, 50)}")
    for other in claim.other_payers:
        out += _other_payer(other, where)
    for number, line in enumerate(claim.lines, start=1):
        out.append(f"LX*{number}")
        out += _service_segments(line)
        for adjudication in line.adjudications:
            code = "HC:" + clean_id(adjudication.procedure_code, 48)
            if adjudication.modifiers:
                code += "".join(":" + clean_id(mod, 2) for mod in adjudication.modifiers)
            out.append(
                f"SVD*{clean_id(adjudication.payer_id, 80)}*{money(adjudication.paid_amount)}*"
                f"{code}**{quantity(adjudication.units)}"
            )
            out += _cas_segments(adjudication.adjustments, f"{where}, line {number}")
            out.append(f"DTP*573*D8*{_d8(adjudication.adjudication_date)}")
    return out


def _subscriber_loop(
    subscriber: Subscriber, payer: Payer, is_patient: bool, where: str
) -> list[str]:
    sbr = segment(
        "SBR",
        subscriber.responsibility,
        "18" if is_patient else "",
        clean_text(subscriber.group_number, 50),
        "" if subscriber.group_number else clean_text(subscriber.group_name, 60),
        _sbr05(
            subscriber.filing_indicator, subscriber.responsibility, subscriber.insurance_type, where
        ),
        "",
        "",
        "",
        subscriber.filing_indicator,
    )
    out = [
        sbr,
        _person_nm1(
            "IL",
            subscriber.last_name,
            subscriber.first_name,
            subscriber.middle_name,
            "MI",
            subscriber.member_id,
        ),
    ]
    out += _address(subscriber.address)
    if subscriber.birth_date is not None:
        out.append(f"DMG*D8*{_d8(subscriber.birth_date)}*{subscriber.sex}")
    out.append(_org_nm1("PR", payer.name, "PI", payer.payer_id))
    out += _address(payer.address)
    return out


def _patient_loop(patient: Patient) -> list[str]:
    out = [
        f"PAT*{patient.relationship}",
        _person_nm1("QC", patient.last_name, patient.first_name, patient.middle_name, "", ""),
    ]
    out += _address(patient.address)
    out.append(f"DMG*D8*{_d8(patient.birth_date)}*{patient.sex}")
    return out


def _billing_provider(provider: BillingProvider) -> list[str]:
    out = []
    if provider.taxonomy:
        out.append(f"PRV*BI*PXC*{clean_id(provider.taxonomy, 50)}")
    if provider.is_person:
        out.append(_person_nm1("85", provider.name, provider.first_name, "", "XX", provider.npi))
    else:
        out.append(_org_nm1("85", provider.name, "XX", provider.npi))
    out += _address(provider.address)
    out.append(f"REF*EI*{clean_id(provider.ein, 9)}")
    return out


def _pad(value: str, width: int) -> str:
    return clean_text(value, width).ljust(width)


def render_837p(
    *,
    claims_by_billing_provider: Mapping[BillingProvider, Sequence[Claim]],
    submitter: Submitter,
    receiver: Receiver,
    interchange_control_number: int,
    group_control_number: int,
    transaction_control_number: int,
    sender_id: str,
    receiver_id: str,
    created_at: dt.datetime,
    usage_indicator: str = "P",
    sender_qualifier: str = "ZZ",
    receiver_qualifier: str = "ZZ",
    line_breaks: bool = False,
    claims_checked: bool = False,
    max_claims_per_transaction: int = MAX_CLAIMS_PER_TRANSACTION,
) -> str:
    """One interchange (ISA) with one group (GS) of 837P transactions (ST): one ST per
    `max_claims_per_transaction` claims (the TR3 asks for at most 5,000 CLM per ST), numbered
    from `transaction_control_number` up.

    Claims of the same subscriber and destination payer share one subscriber loop (HL 22);
    dependents get a patient loop (HL 23) under it. Raises Claim837Error for a claim that
    cannot be written as a valid 837P (`claims_checked=True`: the caller has already run
    `check_claim` on every claim).
    """
    if created_at.tzinfo is None or created_at.utcoffset() is None:
        raise Claim837Error("created_at must be timezone-aware")
    if usage_indicator not in ("P", "T"):
        raise Claim837Error("usage indicator must be P (production) or T (test)")
    if not 1 <= interchange_control_number <= 999_999_999:
        raise Claim837Error("the interchange control number (ISA13) must be 1-999999999")
    if not 1 <= group_control_number <= 999_999_999:
        raise Claim837Error("the group control number (GS06) must be 1-999999999")
    if not 1 <= transaction_control_number <= 999_999_999:
        raise Claim837Error("the transaction set control number (ST02) must be 1-999999999")
    if not any(claims_by_billing_provider.values()):
        raise Claim837Error("there are no claims to write")

    isa13 = f"{interchange_control_number:09d}"
    sender_app = clean_text(sender_id, 15)
    receiver_app = clean_text(receiver_id, 15)
    isa = (
        f"ISA*00*{'':10}*00*{'':10}*{sender_qualifier:<2}*{_pad(sender_id, 15)}*"
        f"{receiver_qualifier:<2}*{_pad(receiver_id, 15)}*{created_at:%y%m%d}*{created_at:%H%M}*"
        f"{REPETITION}*00501*{isa13}*0*{usage_indicator}*{COMPONENT}"
    )
    if len(isa) + 1 != ISA_LENGTH:
        raise Claim837Error("sender/receiver qualifiers must be 2 characters")
    chunks = _transaction_chunks(claims_by_billing_provider, max_claims_per_transaction)
    if transaction_control_number + len(chunks) - 1 > 999_999_999:
        raise Claim837Error("the transaction set control numbers (ST02) would pass 999999999")
    segments = [
        isa,
        f"GS*HC*{sender_app}*{receiver_app}*{created_at:%Y%m%d}*{created_at:%H%M}*"
        f"{group_control_number}*X*{VERSION}",
    ]
    for offset, chunk in enumerate(chunks):
        segments += _transaction(
            chunk,
            st02=f"{transaction_control_number + offset:04d}",
            submitter=submitter,
            receiver=receiver,
            created_at=created_at,
            checked=claims_checked,
        )
    segments += [f"GE*{len(chunks)}*{group_control_number}", f"IEA*1*{isa13}"]
    separator = TERMINATOR + "\n" if line_breaks else TERMINATOR
    return separator.join(segments) + separator


def _group(
    claims: Iterable[Claim], checked: bool
) -> dict[tuple[Subscriber, Payer, bool], dict[Patient | None, list[Claim]]]:
    """Claims by (subscriber, destination payer, subscriber-is-patient), then by patient."""
    groups: dict[tuple[Subscriber, Payer, bool], dict[Patient | None, list[Claim]]] = {}
    for claim in claims:
        if not checked:
            check_claim(claim)
        key = (claim.subscriber, claim.payer, claim.patient is None)
        groups.setdefault(key, {}).setdefault(claim.patient, []).append(claim)
    return groups


def _transaction_chunks(
    claims_by_billing_provider: Mapping[BillingProvider, Sequence[Claim]], size: int
) -> list[dict[BillingProvider, list[Claim]]]:
    """Split the claims into transaction sets of at most `size` claims, keeping their order."""
    if size < 1:
        raise Claim837Error("max_claims_per_transaction must be at least 1")
    chunks: list[dict[BillingProvider, list[Claim]]] = [{}]
    count = 0
    for provider, claims in claims_by_billing_provider.items():
        for claim in claims:
            if count == size:
                chunks.append({})
                count = 0
            chunks[-1].setdefault(provider, []).append(claim)
            count += 1
    return chunks


def _transaction(
    claims_by_billing_provider: Mapping[BillingProvider, Sequence[Claim]],
    *,
    st02: str,
    submitter: Submitter,
    receiver: Receiver,
    created_at: dt.datetime,
    checked: bool,
) -> list[str]:
    """One ST..SE transaction set: header, submitter, receiver and the HL tree of the claims."""
    body = [
        f"ST*837*{st02}*{VERSION}",
        f"BHT*0019*00*{st02}*{created_at:%Y%m%d}*{created_at:%H%M}*CH",
        _org_nm1("41", submitter.name, "46", submitter.identifier),
        segment(
            "PER",
            "IC",
            clean_text(submitter.contact_name, 60),
            "TE",
            clean_id(submitter.phone, 256),
            "EM" if submitter.email else "",
            # an e-mail address needs '@', outside the basic set but inside the extended one
            submitter.email.replace("*", "").replace("~", "").replace(":", "").replace("^", ""),
        ),
        _org_nm1("40", receiver.name, "46", receiver.identifier),
    ]
    hl = 0
    for provider, claims in claims_by_billing_provider.items():
        if not claims:
            continue
        hl += 1
        provider_hl = hl
        body.append(f"HL*{provider_hl}**20*1")
        body += _billing_provider(provider)
        for (subscriber, payer, is_patient), by_patient in _group(claims, checked).items():
            hl += 1
            subscriber_hl = hl
            body.append(f"HL*{subscriber_hl}*{provider_hl}*22*{0 if is_patient else 1}")
            first = next(iter(by_patient.values()))[0]
            body += _subscriber_loop(
                subscriber, payer, is_patient, f"claim {first.patient_control_number!r}"
            )
            for patient, patient_claims in by_patient.items():
                if patient is not None:
                    hl += 1
                    body.append(f"HL*{hl}*{subscriber_hl}*23*0")
                    body += _patient_loop(patient)
                for claim in patient_claims:
                    body += _claim(claim)
    body.append(f"SE*{len(body) + 1}*{st02}")
    return body
