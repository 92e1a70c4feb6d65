"""The claim scrubber's rules, kept as data.

Each rule is a record: an id, a severity, the field to fix, a message in plain words (a template
filled from what the check finds), a pure check over a `ClaimFacts` snapshot (no database), and
its own test cases: `passing` and `failing` are overrides applied to `CLEAN` (a claim that passes
every rule). `billing/tests/test_scrub_rules.py` runs every case of every rule automatically, so
a new rule is not accepted without examples of what it catches and what it lets through.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from billing.icd10 import display_code, is_billable
from billing.npi import npi_is_valid
from billing.reference_data import MODIFIERS, PLACES_OF_SERVICE
from billing.x12.claim837 import MEDICARE_FILING_INDICATORS, MEDICARE_SECONDARY_TYPES
from core.text import fold

ERROR = "error"
WARNING = "warning"

PROCEDURE_CODE = re.compile(r"^(?:[0-9]{4}[0-9FTU]|[A-V][0-9]{4})$")
TAXONOMY = re.compile(r"^[0-9]{3}[0-9A-Z]{6}X$")
EM_CODE = re.compile(r"^99[2-4][0-9]{2}$")
MAX_CLAIM_LINES = 50  # 837P loop 2400 repeats at most 50 times
TIMELY_FILING_WARNING_DAYS = 30


@dataclass(frozen=True)
class LineFacts:
    number: int
    code: str
    modifiers: tuple[str, ...] = ()
    units: Decimal = Decimal("1")
    charge: Decimal = Decimal("100.00")
    pointers: tuple[int, ...] = (1,)
    service_date: dt.date = dt.date(2026, 3, 2)
    place_of_service: str = ""


@dataclass(frozen=True)
class PriorPayerFacts:
    """A payer that paid this claim before (from its recorded prior payments)."""

    payer_id: str
    filing_indicator: str  # SBR09 of that payer (MA/MB: Medicare)
    sequence: str  # that payer's SBR01 on the claim it paid: P, S, T
    medicare_secondary_type: str = ""  # SBR05 of the coverage that claim went to


@dataclass(frozen=True)
class ClaimFacts:
    """Everything the rules look at, read once from the database (billing.scrubber)."""

    today: dt.date
    payer_id: str
    timely_filing_days: int
    member_id: str
    relationship: str
    subscriber_name: str
    subscriber_birth_date: dt.date | None
    patient_family_name: str
    patient_given_name: str
    patient_birth_date: dt.date | None
    patient_sex: str
    patient_address_line1: str
    patient_city: str
    patient_state: str
    patient_postal_code: str
    billing_npi: str
    billing_taxonomy: str
    billing_tax_id: str
    billing_postal_code: str
    rendering_npi: str
    place_of_service: str
    diagnoses: tuple[str, ...]
    lines: tuple[LineFacts, ...]
    total_charge: Decimal
    frequency_code: str = "1"
    original_payer_claim_number: str = ""
    sequence: str = "P"
    payer_filing_indicator: str = "CI"  # SBR09 of the claim's payer (MA/MB: Medicare)
    medicare_secondary_type: str = ""  # the coverage's SBR05 code
    prior_payments: int = 0
    prior_payers: tuple[PriorPayerFacts, ...] = ()
    duplicate_of: tuple[str, ...] = ()
    known_modifiers: frozenset[str] = field(
        default_factory=lambda: frozenset(code for code, _ in MODIFIERS)
    )
    known_places: frozenset[str] = field(
        default_factory=lambda: frozenset(code for code, _ in PLACES_OF_SERVICE)
    )


Finding = dict[str, Any]  # template values; "line" (a line number) and "field" are optional
Check = Callable[[ClaimFacts], Iterator[Finding]]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    field: str
    message: str
    check: Check
    passing: tuple[Mapping[str, Any], ...]
    failing: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Problem:
    rule_id: str
    severity: str
    field: str
    message: str
    line_number: int | None = None


def run_rule(rule: Rule, facts: ClaimFacts) -> list[Problem]:
    problems = []
    for found in rule.check(facts):
        line = found.get("line")
        field_name = str(found.get("field") or rule.field).replace("{line}", str(line))
        problems.append(
            Problem(
                rule_id=rule.id,
                severity=rule.severity,
                field=field_name,
                message=rule.message.format(**found),
                line_number=line,
            )
        )
    return problems


def run_all(facts: ClaimFacts, rules: tuple[Rule, ...] | None = None) -> list[Problem]:
    """Every problem of every rule at once: errors first, then by line and rule."""
    problems = [problem for rule in rules or RULES for problem in run_rule(rule, facts)]
    return sorted(
        problems,
        key=lambda p: (p.severity != ERROR, p.line_number or 0, p.rule_id),
    )


def apply_case(base: ClaimFacts, case: Mapping[str, Any]) -> ClaimFacts:
    return dataclasses.replace(base, **case)


# ---- the baseline: a claim that passes every rule -------------------------------------------

_DOS = dt.date(2026, 3, 2)


def _line(number: int = 1, **changes: Any) -> LineFacts:
    values: dict[str, Any] = {"number": number, "code": "99213", "service_date": _DOS}
    values.update(changes)
    return LineFacts(**values)


CLEAN = ClaimFacts(
    today=dt.date(2026, 3, 20),
    payer_id="60054",
    timely_filing_days=365,
    member_id="W123456789",
    relationship="self",
    subscriber_name="",
    subscriber_birth_date=None,
    patient_family_name="Rivera",
    patient_given_name="Ana",
    patient_birth_date=dt.date(1980, 5, 17),
    patient_sex="F",
    patient_address_line1="12 Elm Street",
    patient_city="Springfield",
    patient_state="IL",
    patient_postal_code="62701",
    billing_npi="1234567893",
    billing_taxonomy="207Q00000X",
    billing_tax_id="123456789",
    billing_postal_code="627011234",
    rendering_npi="1245319599",
    place_of_service="11",
    diagnoses=("J45909", "E119"),
    lines=(_line(1), _line(2, code="85025", charge=Decimal("25.00"), pointers=(2, 1))),
    total_charge=Decimal("125.00"),
)

# ---- checks ---------------------------------------------------------------------------------


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _require(attribute: str) -> Check:
    def check(facts: ClaimFacts) -> Iterator[Finding]:
        if _blank(getattr(facts, attribute)):
            yield {}

    return check


def _patient_address(facts: ClaimFacts) -> Iterator[Finding]:
    parts = {
        "address_line1": "street address",
        "city": "city",
        "state": "state",
        "postal_code": "ZIP code",
    }
    for name, label in parts.items():
        if _blank(getattr(facts, f"patient_{name}")):
            yield {"part": label, "field": f"patient.{name}"}


def _patient_zip(facts: ClaimFacts) -> Iterator[Finding]:
    value = facts.patient_postal_code.replace("-", "")
    if value and not (value.isdigit() and len(value) in (5, 9)):
        yield {"value": facts.patient_postal_code}


def _patient_sex(facts: ClaimFacts) -> Iterator[Finding]:
    if facts.patient_sex not in ("F", "M", "U"):
        yield {}


def _npi(attribute: str) -> Check:
    def check(facts: ClaimFacts) -> Iterator[Finding]:
        value = getattr(facts, attribute)
        if not npi_is_valid(value):
            yield {"value": value or "(blank)"}

    return check


def _billing_taxonomy(facts: ClaimFacts) -> Iterator[Finding]:
    if not TAXONOMY.match(facts.billing_taxonomy or ""):
        yield {"value": facts.billing_taxonomy or "(blank)"}


def _tax_id(facts: ClaimFacts) -> Iterator[Finding]:
    value = (facts.billing_tax_id or "").replace("-", "")
    if not (len(value) == 9 and value.isascii() and value.isdigit()):
        yield {"value": facts.billing_tax_id or "(blank)"}


def _billing_zip9(facts: ClaimFacts) -> Iterator[Finding]:
    value = (facts.billing_postal_code or "").replace("-", "")
    if not (len(value) == 9 and value.isdigit()):
        yield {"value": facts.billing_postal_code or "(blank)"}


def _has_diagnosis(facts: ClaimFacts) -> Iterator[Finding]:
    if not facts.diagnoses:
        yield {}


def _billable_diagnoses(facts: ClaimFacts) -> Iterator[Finding]:
    for position, code in enumerate(facts.diagnoses, start=1):
        if not is_billable(code):
            yield {
                "code": display_code(code),
                "position": position,
                "field": f"diagnoses.{position}",
            }


def _at_most_12_diagnoses(facts: ClaimFacts) -> Iterator[Finding]:
    if len(facts.diagnoses) > 12:
        yield {"count": len(facts.diagnoses)}


def _each_line(test: Callable[[ClaimFacts, LineFacts], Iterator[Finding]]) -> Check:
    def check(facts: ClaimFacts) -> Iterator[Finding]:
        for line in facts.lines:
            for found in test(facts, line):
                yield {"line": line.number, **found}

    return check


def _has_pointer(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    if not line.pointers:
        yield {}


def _pointer_in_range(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    count = len(facts.diagnoses)
    for pointer in line.pointers:
        if not 1 <= pointer <= count:
            yield {"pointer": pointer, "count": count}


def _pointers_at_most_4(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    if len(line.pointers) > 4:
        yield {"count": len(line.pointers)}


def _pointer_repeated(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    if len(set(line.pointers)) != len(line.pointers):
        yield {}


def _procedure_code(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    if not PROCEDURE_CODE.match(line.code or ""):
        yield {"code": line.code or "(blank)"}


def _known_modifiers(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    for modifier in line.modifiers:
        if modifier not in facts.known_modifiers:
            yield {"modifier": modifier}


def _at_most_4_modifiers(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    if len(line.modifiers) > 4:
        yield {"count": len(line.modifiers)}


def _repeated_modifier(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    if len(set(line.modifiers)) != len(line.modifiers):
        yield {}


def _left_and_right(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    if {"LT", "RT"} <= set(line.modifiers):
        yield {}


def _bilateral_units(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    if "50" in line.modifiers and line.units != 1:
        yield {"units": f"{line.units.normalize():f}"}


def _units_positive(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    if line.units <= 0:
        yield {"units": f"{line.units.normalize():f}"}


def _em_units(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    if EM_CODE.match(line.code or "") and line.units > 1:
        yield {"code": line.code, "units": f"{line.units.normalize():f}"}


def _charge_positive(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    if line.charge <= 0:
        yield {"charge": f"{line.charge:.2f}"}


def _service_not_future(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    if line.service_date > facts.today:
        yield {"date": line.service_date.isoformat()}


def _days_since(facts: ClaimFacts, line: LineFacts) -> int:
    return (facts.today - line.service_date).days


def _timely_filing(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    if _days_since(facts, line) > facts.timely_filing_days:
        yield {"date": line.service_date.isoformat(), "days": facts.timely_filing_days}


def _timely_filing_close(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    left = facts.timely_filing_days - _days_since(facts, line)
    if 0 <= left <= TIMELY_FILING_WARNING_DAYS:
        yield {"left": left, "date": line.service_date.isoformat()}


def _line_place(facts: ClaimFacts, line: LineFacts) -> Iterator[Finding]:
    if line.place_of_service and line.place_of_service not in facts.known_places:
        yield {"code": line.place_of_service}


def _place_of_service(facts: ClaimFacts) -> Iterator[Finding]:
    if facts.place_of_service not in facts.known_places:
        yield {"code": facts.place_of_service or "(blank)"}


def _line_count(facts: ClaimFacts) -> Iterator[Finding]:
    if not 1 <= len(facts.lines) <= MAX_CLAIM_LINES:
        yield {"count": len(facts.lines)}


def _total(facts: ClaimFacts) -> Iterator[Finding]:
    lines_sum = sum((line.charge for line in facts.lines), Decimal("0"))
    if lines_sum != facts.total_charge:
        yield {"total": f"{facts.total_charge:.2f}", "sum": f"{lines_sum:.2f}"}


def _words(name: str) -> set[str]:
    return {fold(word) for word in re.split(r"[\s,]+", name or "") if fold(word)}


def _self_is_patient(facts: ClaimFacts) -> Iterator[Finding]:
    if facts.relationship != "self":
        return
    patient_words = _words(f"{facts.patient_given_name} {facts.patient_family_name}")
    if facts.subscriber_name.strip() and not _words(facts.subscriber_name) <= patient_words:
        yield {"what": "name", "field": "coverage.subscriber_name"}
    if facts.subscriber_birth_date and facts.subscriber_birth_date != facts.patient_birth_date:
        yield {"what": "date of birth", "field": "coverage.subscriber_birth_date"}


def _dependent_subscriber(facts: ClaimFacts) -> Iterator[Finding]:
    if facts.relationship == "self":
        return
    if _blank(facts.subscriber_name):
        yield {"what": "name", "field": "coverage.subscriber_name"}
    if facts.subscriber_birth_date is None:
        yield {"what": "date of birth", "field": "coverage.subscriber_birth_date"}


def _duplicate(facts: ClaimFacts) -> Iterator[Finding]:
    for other in facts.duplicate_of:
        yield {"other": other}


def _original_claim_number(facts: ClaimFacts) -> Iterator[Finding]:
    if facts.frequency_code in ("7", "8") and _blank(facts.original_payer_claim_number):
        yield {}


def _prior_payment(facts: ClaimFacts) -> Iterator[Finding]:
    if facts.sequence != "P" and facts.prior_payments == 0:
        yield {}


def _needs_msp_type(filing_indicator: str, sequence: str, msp_type: str) -> bool:
    """Medicare as a non-primary payer without a valid SBR05 code."""
    return (
        filing_indicator in MEDICARE_FILING_INDICATORS
        and sequence != "P"
        and msp_type not in MEDICARE_SECONDARY_TYPES
    )


def _medicare_secondary_type(facts: ClaimFacts) -> Iterator[Finding]:
    if _needs_msp_type(facts.payer_filing_indicator, facts.sequence, facts.medicare_secondary_type):
        yield {}


def _prior_medicare_secondary_type(facts: ClaimFacts) -> Iterator[Finding]:
    seen = set()
    for prior in facts.prior_payers:
        if prior.payer_id not in seen and _needs_msp_type(
            prior.filing_indicator, prior.sequence, prior.medicare_secondary_type
        ):
            seen.add(prior.payer_id)
            yield {"payer": prior.payer_id}


def _lines(*lines: LineFacts) -> dict[str, Any]:
    return {"lines": lines, "total_charge": sum((x.charge for x in lines), Decimal("0"))}


_OLD = dt.date(2025, 1, 2)

RULES: tuple[Rule, ...] = (
    Rule(
        id="SCR-SUB-001",
        severity=ERROR,
        field="coverage.member_id",
        message="The subscriber's member id is missing: enter it on the patient's coverage.",
        check=_require("member_id"),
        passing=({},),
        failing=({"member_id": ""}, {"member_id": "   "}),
    ),
    Rule(
        id="SCR-PAY-001",
        severity=ERROR,
        field="payer.payer_id",
        message="The payer has no payer id: enter it under Payers.",
        check=_require("payer_id"),
        passing=({},),
        failing=({"payer_id": ""},),
    ),
    Rule(
        id="SCR-PAT-001",
        severity=ERROR,
        field="patient.birth_date",
        message="The patient's date of birth is missing.",
        check=_require("patient_birth_date"),
        passing=({},),
        failing=({"patient_birth_date": None},),
    ),
    Rule(
        id="SCR-PAT-002",
        severity=ERROR,
        field="patient.sex_at_birth",
        message="The patient's sex must be F, M or U for the payer.",
        check=_patient_sex,
        passing=({}, {"patient_sex": "U"}),
        failing=({"patient_sex": ""}, {"patient_sex": "X"}),
    ),
    Rule(
        id="SCR-PAT-003",
        severity=ERROR,
        field="patient.address",
        message="The patient's {part} is missing.",
        check=_patient_address,
        passing=({},),
        failing=({"patient_address_line1": ""}, {"patient_city": ""}, {"patient_state": " "}),
    ),
    Rule(
        id="SCR-PAT-004",
        severity=ERROR,
        field="patient.postal_code",
        message="The patient's ZIP code {value} must be 5 or 9 digits.",
        check=_patient_zip,
        passing=({}, {"patient_postal_code": "62701-1234"}),
        failing=({"patient_postal_code": "6270"}, {"patient_postal_code": "K1A0B1"}),
    ),
    Rule(
        id="SCR-BPR-001",
        severity=ERROR,
        field="billing_provider.npi",
        message="The billing provider's NPI {value} is not valid (10 digits with a check digit).",
        check=_npi("billing_npi"),
        passing=({},),
        failing=({"billing_npi": ""}, {"billing_npi": "1234567890"}, {"billing_npi": "123"}),
    ),
    Rule(
        id="SCR-BPR-002",
        severity=ERROR,
        field="billing_provider.taxonomy_code",
        message="The billing provider's taxonomy code {value} must be 10 characters ending in X.",
        check=_billing_taxonomy,
        passing=({}, {"billing_taxonomy": "261QP2300X"}),
        failing=({"billing_taxonomy": ""}, {"billing_taxonomy": "207Q00000"}),
    ),
    Rule(
        id="SCR-BPR-003",
        severity=ERROR,
        field="billing_provider.tax_id",
        message="The billing provider's tax id {value} must be a 9-digit EIN.",
        check=_tax_id,
        passing=({}, {"billing_tax_id": "12-3456789"}),
        failing=({"billing_tax_id": ""}, {"billing_tax_id": "12345678"}),
    ),
    Rule(
        id="SCR-BPR-004",
        severity=ERROR,
        field="billing_provider.postal_code",
        message="The billing provider's ZIP code {value} needs all 9 digits (ZIP+4) on a claim.",
        check=_billing_zip9,
        passing=({}, {"billing_postal_code": "62701-1234"}),
        failing=({"billing_postal_code": "62701"},),
    ),
    Rule(
        id="SCR-NPI-001",
        severity=ERROR,
        field="rendering_practitioner.npi",
        message="The rendering practitioner's NPI {value} is not valid.",
        check=_npi("rendering_npi"),
        passing=({},),
        failing=({"rendering_npi": "1245319598"}, {"rendering_npi": ""}),
    ),
    Rule(
        id="SCR-DX-001",
        severity=ERROR,
        field="diagnoses",
        message="The claim has no diagnosis: add at least one ICD-10-CM code.",
        check=_has_diagnosis,
        passing=({},),
        failing=({"diagnoses": (), **_lines(_line(1, pointers=()))},),
    ),
    Rule(
        id="SCR-DX-002",
        severity=ERROR,
        field="diagnoses",
        message="Diagnosis {position} ({code}) is not a billable ICD-10-CM code.",
        check=_billable_diagnoses,
        passing=({}, {"diagnoses": ("Z0000", "S72001A")}),
        failing=({"diagnoses": ("J45", "E119")}, {"diagnoses": ("J45909", "XYZ12")}),
    ),
    Rule(
        id="SCR-DX-003",
        severity=ERROR,
        field="diagnoses",
        message="A claim holds at most 12 diagnoses; this one has {count}.",
        check=_at_most_12_diagnoses,
        passing=({},),
        failing=({"diagnoses": ("J45909",) * 13},),
    ),
    Rule(
        id="SCR-PTR-001",
        severity=ERROR,
        field="lines.{line}.pointers",
        message="Line {line} points to no diagnosis: add at least one diagnosis pointer.",
        check=_each_line(_has_pointer),
        passing=({},),
        failing=(_lines(_line(1, pointers=())),),
    ),
    Rule(
        id="SCR-PTR-002",
        severity=ERROR,
        field="lines.{line}.pointers",
        message="Line {line} points to diagnosis {pointer}, but the claim has {count}.",
        check=_each_line(_pointer_in_range),
        passing=({}, _lines(_line(1, pointers=(2,)))),
        failing=(_lines(_line(1, pointers=(3,))), _lines(_line(1, pointers=(0,)))),
    ),
    Rule(
        id="SCR-PTR-003",
        severity=ERROR,
        field="lines.{line}.pointers",
        message="Line {line} has {count} diagnosis pointers; at most 4 are allowed.",
        check=_each_line(_pointers_at_most_4),
        passing=({},),
        failing=(_lines(_line(1, pointers=(1, 2, 1, 2, 1))),),
    ),
    Rule(
        id="SCR-PTR-004",
        severity=WARNING,
        field="lines.{line}.pointers",
        message="Line {line} points to the same diagnosis twice.",
        check=_each_line(_pointer_repeated),
        passing=({},),
        failing=(_lines(_line(1, pointers=(1, 1))),),
    ),
    Rule(
        id="SCR-COD-001",
        severity=ERROR,
        field="lines.{line}.code",
        message="Line {line}: {code} is not a CPT or HCPCS code (5 characters, e.g. 99213, J1100).",
        check=_each_line(_procedure_code),
        passing=({}, _lines(_line(1, code="J1100")), _lines(_line(1, code="0001F"))),
        failing=(_lines(_line(1, code="9921")), _lines(_line(1, code="ABCDE"))),
    ),
    Rule(
        id="SCR-MOD-001",
        severity=ERROR,
        field="lines.{line}.modifiers",
        message="Line {line}: modifier {modifier} is not a known modifier.",
        check=_each_line(_known_modifiers),
        passing=({}, _lines(_line(1, modifiers=("25",)))),
        failing=(_lines(_line(1, modifiers=("Q9",))),),
    ),
    Rule(
        id="SCR-MOD-002",
        severity=ERROR,
        field="lines.{line}.modifiers",
        message="Line {line} has {count} modifiers; at most 4 are allowed.",
        check=_each_line(_at_most_4_modifiers),
        passing=({}, _lines(_line(1, modifiers=("25", "59", "GA", "KX")))),
        failing=(_lines(_line(1, modifiers=("25", "59", "GA", "KX", "RT"))),),
    ),
    Rule(
        id="SCR-MOD-003",
        severity=ERROR,
        field="lines.{line}.modifiers",
        message="Line {line} repeats a modifier.",
        check=_each_line(_repeated_modifier),
        passing=({},),
        failing=(_lines(_line(1, modifiers=("59", "59"))),),
    ),
    Rule(
        id="SCR-MOD-004",
        severity=ERROR,
        field="lines.{line}.modifiers",
        message="Line {line} has both LT and RT: bill a bilateral service with modifier 50.",
        check=_each_line(_left_and_right),
        passing=({}, _lines(_line(1, modifiers=("LT",)))),
        failing=(_lines(_line(1, modifiers=("LT", "RT"))),),
    ),
    Rule(
        id="SCR-MOD-005",
        severity=WARNING,
        field="lines.{line}.units",
        message="Line {line} has modifier 50 (bilateral) with {units} units: most payers want 1.",
        check=_each_line(_bilateral_units),
        passing=({}, _lines(_line(1, modifiers=("50",)))),
        failing=(_lines(_line(1, modifiers=("50",), units=Decimal("2"))),),
    ),
    Rule(
        id="SCR-UNT-001",
        severity=ERROR,
        field="lines.{line}.units",
        message="Line {line} has {units} units: units must be more than zero.",
        check=_each_line(_units_positive),
        passing=({},),
        failing=(_lines(_line(1, units=Decimal("0"))), _lines(_line(1, units=Decimal("-1")))),
    ),
    Rule(
        id="SCR-UNT-002",
        severity=WARNING,
        field="lines.{line}.units",
        message="Line {line}: visit code {code} is billed with {units} units; a visit is one unit.",
        check=_each_line(_em_units),
        passing=({}, _lines(_line(1, code="97110", units=Decimal("3")))),
        failing=(_lines(_line(1, units=Decimal("2"))),),
    ),
    Rule(
        id="SCR-CHG-001",
        severity=ERROR,
        field="lines.{line}.charge",
        message="Line {line} has a charge of {charge}: a billed line needs a positive charge.",
        check=_each_line(_charge_positive),
        passing=({},),
        failing=(_lines(_line(1, charge=Decimal("0.00"))),),
    ),
    Rule(
        id="SCR-CHG-002",
        severity=ERROR,
        field="total_charge",
        message="The claim total {total} does not equal the sum of its lines ({sum}).",
        check=_total,
        passing=({},),
        failing=({"total_charge": Decimal("124.99")},),
    ),
    Rule(
        id="SCR-LIN-001",
        severity=ERROR,
        field="lines",
        message="A claim needs 1 to 50 service lines; this one has {count}.",
        check=_line_count,
        passing=({},),
        failing=(
            {"lines": (), "total_charge": Decimal("0")},
            _lines(*(_line(n) for n in range(1, 52))),
        ),
    ),
    Rule(
        id="SCR-DAT-001",
        severity=ERROR,
        field="lines.{line}.service_date",
        message="Line {line}'s service date {date} is in the future.",
        check=_each_line(_service_not_future),
        passing=({}, _lines(_line(1, service_date=dt.date(2026, 3, 20)))),
        failing=(_lines(_line(1, service_date=dt.date(2026, 3, 21))),),
    ),
    Rule(
        id="SCR-DAT-002",
        severity=ERROR,
        field="lines.{line}.service_date",
        message="Line {line}'s service date {date} is past the payer's {days}-day filing limit.",
        check=_each_line(_timely_filing),
        passing=(
            {},
            {"timely_filing_days": 90, **_lines(_line(1, service_date=dt.date(2025, 12, 20)))},
        ),
        failing=(
            _lines(_line(1, service_date=_OLD)),
            {"timely_filing_days": 90, **_lines(_line(1, service_date=dt.date(2025, 12, 19)))},
        ),
    ),
    Rule(
        id="SCR-DAT-003",
        severity=WARNING,
        field="lines.{line}.service_date",
        message="Line {line} ({date}) has {left} days left before the payer's filing limit.",
        check=_each_line(_timely_filing_close),
        passing=(
            {},
            {"timely_filing_days": 90, **_lines(_line(1, service_date=dt.date(2026, 1, 20)))},
            {"timely_filing_days": 90, **_lines(_line(1, service_date=dt.date(2025, 12, 1)))},
        ),
        failing=(
            {"timely_filing_days": 90, **_lines(_line(1, service_date=dt.date(2026, 1, 19)))},
            {"timely_filing_days": 90, **_lines(_line(1, service_date=dt.date(2025, 12, 20)))},
        ),
    ),
    Rule(
        id="SCR-POS-001",
        severity=ERROR,
        field="place_of_service",
        message="Place of service {code} is not a CMS place-of-service code.",
        check=_place_of_service,
        passing=({}, {"place_of_service": "02"}),
        failing=({"place_of_service": "98"}, {"place_of_service": ""}),
    ),
    Rule(
        id="SCR-POS-002",
        severity=ERROR,
        field="lines.{line}.place_of_service",
        message="Line {line}: place of service {code} is not a CMS place-of-service code.",
        check=_each_line(_line_place),
        passing=({}, _lines(_line(1, place_of_service="22"))),
        failing=(_lines(_line(1, place_of_service="00")),),
    ),
    Rule(
        id="SCR-REL-001",
        severity=ERROR,
        field="coverage.relationship",
        message="The patient is the subscriber (self), but the subscriber's {what} is not the "
        "patient's: fix the relationship or the subscriber.",
        check=_self_is_patient,
        passing=(
            {},
            {"subscriber_name": "Ana Rivera", "subscriber_birth_date": dt.date(1980, 5, 17)},
            {"subscriber_name": "RIVERA, ANA"},
        ),
        failing=(
            {"subscriber_name": "Luis Rivera"},
            {"subscriber_birth_date": dt.date(1955, 1, 1)},
        ),
    ),
    Rule(
        id="SCR-REL-002",
        severity=ERROR,
        field="coverage.subscriber_name",
        message="The patient is a dependent: the subscriber's {what} is required.",
        check=_dependent_subscriber,
        passing=(
            {},
            {
                "relationship": "child",
                "subscriber_name": "Luis Rivera",
                "subscriber_birth_date": dt.date(1955, 1, 1),
            },
        ),
        failing=(
            {"relationship": "child", "subscriber_birth_date": dt.date(1955, 1, 1)},
            {"relationship": "spouse", "subscriber_name": "Luis Rivera"},
        ),
    ),
    Rule(
        id="SCR-DUP-001",
        severity=ERROR,
        field="lines",
        message="Claim {other} for the same patient, payer, date of service and codes is "
        "still open: this looks like a duplicate.",
        check=_duplicate,
        passing=({},),
        failing=({"duplicate_of": ("PD00000017",)},),
    ),
    Rule(
        id="SCR-FRQ-001",
        severity=ERROR,
        field="replaces.payer_claim_number",
        message="A replacement or void needs the payer's claim number of the original claim.",
        check=_original_claim_number,
        passing=({}, {"frequency_code": "7", "original_payer_claim_number": "2206512345"}),
        failing=({"frequency_code": "7"}, {"frequency_code": "8"}),
    ),
    Rule(
        id="SCR-SEC-001",
        severity=WARNING,
        field="prior_payments",
        message="This is not the primary claim, and the prior payer's payment is not recorded yet.",
        check=_prior_payment,
        passing=({}, {"sequence": "S", "prior_payments": 1}),
        failing=({"sequence": "S"},),
    ),
    Rule(
        id="SCR-MSP-001",
        severity=ERROR,
        field="coverage.medicare_secondary_type",
        message="Medicare is not the primary payer on this claim: set the Medicare secondary "
        "payer type on the patient's Medicare coverage (why another payer pays first; the "
        "837P sends it as SBR05).",
        check=_medicare_secondary_type,
        passing=(
            {},
            {"payer_filing_indicator": "MB"},
            {"payer_filing_indicator": "CI", "sequence": "S"},
            {"payer_filing_indicator": "MB", "sequence": "S", "medicare_secondary_type": "12"},
            {"payer_filing_indicator": "MA", "sequence": "T", "medicare_secondary_type": "47"},
        ),
        failing=(
            {"payer_filing_indicator": "MB", "sequence": "S"},
            {"payer_filing_indicator": "MA", "sequence": "T"},
            {"payer_filing_indicator": "MB", "sequence": "S", "medicare_secondary_type": "99"},
        ),
    ),
    Rule(
        id="SCR-MSP-002",
        severity=ERROR,
        field="prior_coverage.medicare_secondary_type",
        message="The prior payer {payer} paid as Medicare in second (or third) place: set the "
        "Medicare secondary payer type on the patient's Medicare coverage (the 837P sends it "
        "in the other payer's loop).",
        check=_prior_medicare_secondary_type,
        passing=(
            {},
            {"prior_payers": (PriorPayerFacts("13102", "MB", "P"),)},
            {"prior_payers": (PriorPayerFacts("60054", "CI", "S"),)},
            {"prior_payers": (PriorPayerFacts("13102", "MB", "S", "43"),)},
        ),
        failing=(
            {"prior_payers": (PriorPayerFacts("13102", "MB", "S"),)},
            {
                "prior_payers": (
                    PriorPayerFacts("13102", "MB", "S"),
                    PriorPayerFacts("13102", "MB", "S"),  # line and claim rows: one problem
                    PriorPayerFacts("60054", "CI", "P"),
                )
            },
        ),
    ),
)

RULES_BY_ID = {rule.id: rule for rule in RULES}
