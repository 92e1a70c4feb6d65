"""X12 5010 835 (005010X221A1, health care claim payment/advice) parser.

`parse_835(data)` turns the bytes of an 835 file into frozen dataclasses (`Remittance835` →
`Payment835` per ST..SE → `ClaimPayment835` per CLP → `ServiceLine835` per SVC, with every CAS
triplet as an `Adjustment`, and PLB pairs as `ProviderAdjustment`). Amounts are `Decimal`
(never float) and may be negative (reversals, OA-94 -9.00). Nothing touches the database.

The one error type is `X835Error(segment_index, segment_id, element, message)`: every refusal
names the segment (its 1-based position in the file and its id), the element where there is one,
and the problem in plain words. No other exception escapes for any input (a hypothesis fuzz test
mutating the shared fixtures holds us to that).

What is checked, and refused when wrong:

* the envelope: ISA..IEA, GS..GE, ST..SE nesting; ST01 = 835; SE02 = ST02; a file that stops
  before SE/GE/IEA (truncated) is refused;
* each transaction set has exactly one BPR (its first segment) and one TRN with a trace number
  (TRN02), and a payer (N1*PR);
* amounts are numbers with at most two decimals; a CAS triplet with a reason code has an amount;
  CAS groups are CO, CR, OA, PI, PR;
* **money balances** (TR3 section 1.10.2): per transaction set, BPR02 (signed by BPR03: C credit,
  D debit) = sum of CLP04 - sum of PLB amounts; per claim, CLP03 - CLP04 = every CAS amount of the
  claim and of its lines; per line with a charge, SVC02 - SVC03 = that line's CAS amounts. A file
  that does not balance is refused with the figures, so nothing wrong is ever posted.

Decisions on imperfect files (the shared fixtures hold each case; see their SOURCES.md):

* **No envelope** (bare ST..SE, ``bcbsnc_sample_no_envelope.835``): accepted; delimiters as
  `billing.x12.segments` describes (element separator after ST, ``~`` terminator, ``:``
  component). `Remittance835.enveloped` is False and a warning says so.
* **SE01 segment count wrong** (the same file says 33 for 32 segments): accepted with a warning;
  the count protects against truncation, which the balance checks and the SE/ST control number
  check catch anyway.
* **Wrong component separator inside SVC** (``lfh_cob-contractural-adjustment.835``:
  ``SVC*HC>55669`` while ISA16 is ``:``): recognised and accepted with a warning when SVC01 (or
  SVC06) holds no declared component separator but starts with a two-letter product qualifier
  followed by another punctuation character.
* **SVC elements shifted by a '*' written for ':'** (``lfh_tertiary-payment.835``:
  ``SVC*HC*24599.00*1766.50*187.50**1``): SVC01 holds only a qualifier. Accepted with a warning
  only when the shifted reading (code in SVC02, charge SVC03, paid SVC04, units SVC06) makes the
  line balance against its CAS; otherwise refused. A code written as a number with a zero decimal
  part ("24599.00") is read as the code ("24599").
* **Short BPR** (the two LinuxForHealth COB files: one '*' missing, so the date lands in BPR15):
  when BPR16 is absent and BPR15 is a valid CCYYMMDD date on a payment without account data
  (BPR06..BPR14 empty), it is taken as the payment date, with a warning.
* **Invalid BPR16 date** (``lfh_managed-care.835``: ``20002316``): reported as a warning;
  `Payment835.payment_date` is None. Invalid DTM dates are treated the same way.
* **SVC with empty charge/paid** (the third line of the BCBS NC sample): accepted;
  `ServiceLine835.charge`/`paid` are None and the line balance check is skipped for it.
* **Non-unique CLP01** (``emedny_sample.835``: every CLP01 reads "PATIENT ACCOUNT NUMBER"):
  accepted; the parser keeps every claim, matching is the poster's concern (CLP07 differs).
* Segments this module does not read (N3, N4, PER, RDM, LX, TS3, TS2, MIA, MOA, QTY, CUR, RDM,
  ...) are skipped. A segment outside ST..SE other than the envelope is refused.
"""

from __future__ import annotations

import datetime as dt
import gc
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain
from operator import attrgetter

from billing.x12.segments import Delimiters, X12SyntaxError, tokenize

ADJUSTMENT_GROUPS = frozenset({"CO", "CR", "OA", "PI", "PR"})
HANDLING_CODES = frozenset({"C", "D", "H", "I", "P", "U", "X"})
PAYMENT_METHODS = frozenset({"ACH", "BOP", "CHK", "FWT", "NON"})
# SVC01-1 / SVC06-1 product or service id qualifiers of 005010X221A1.
PRODUCT_QUALIFIERS = frozenset({"AD", "ER", "HC", "HP", "IV", "N4", "NU", "WK", "ZZ", "CJ", "N6"})
CLAIM_STATUS_CODES = frozenset({"1", "2", "3", "4", "19", "20", "21", "22", "23", "25"})
REVERSAL_STATUS = "22"
DENIED_STATUS = "4"
MAX_CAS_TRIPLETS = 6
MAX_PLB_PAIRS = 6

_CODE_WITH_ZERO_DECIMALS = re.compile(r"([A-Z0-9]{4,5})\.0+")
# The amounts `_amount` accepts as they are written (no blanks around them; at most 19
# characters is checked beside): a money amount (two decimals at most), and a number. Only a
# shortcut: what they do not match goes through `_amount`, which accepts or refuses it.
_MONEY_TEXT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]{0,2})?|\.[0-9]{1,2})").fullmatch
_NUMBER_TEXT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)").fullmatch
_MAX_AMOUNT_TEXT = 19
_CENT = Decimal("0.01")
_AMOUNT_OF = attrgetter("amount")
_ADJUSTMENTS_OF = attrgetter("adjustments")
_ZERO = Decimal("0")


class X835Error(X12SyntaxError):
    """The 835 is refused: `segment_index` (1-based), `segment_id`, `element`, `message`."""


# --- the parsed remittance ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One CAS triplet: group (CO/PR/OA/PI/CR), CARC reason code, amount, quantity."""

    group: str
    reason: str
    amount: Decimal
    quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ProcedureCode:
    """An SVC01/SVC06 composite: qualifier (HC, NU, ...), code, modifiers."""

    qualifier: str
    code: str
    modifiers: tuple[str, ...] = ()

    def __str__(self) -> str:
        return ":".join((self.qualifier, self.code, *self.modifiers))


@dataclass(frozen=True, slots=True)
class Reference:
    qualifier: str
    value: str


@dataclass(frozen=True, slots=True)
class AmountInfo:
    qualifier: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Party:
    """An NM1 in loop 2100: QC patient, IL subscriber, 74 corrected name, 82 rendering, ..."""

    entity: str
    entity_type: str
    last_name: str
    first_name: str = ""
    middle_name: str = ""
    suffix: str = ""
    id_qualifier: str = ""
    identifier: str = ""


@dataclass(frozen=True, slots=True)
class ServiceLine835:
    procedure: ProcedureCode
    charge: Decimal | None
    paid: Decimal | None
    revenue_code: str
    units: Decimal | None
    original_procedure: ProcedureCode | None
    original_units: Decimal | None
    service_date: dt.date | None
    service_end_date: dt.date | None
    adjustments: tuple[Adjustment, ...]
    control_number: str  # REF*6R: our line item control number, as we sent it
    references: tuple[Reference, ...]
    amounts: tuple[AmountInfo, ...]
    remark_codes: tuple[str, ...]  # LQ*HE (RARC)
    segment_index: int

    @property
    def allowed(self) -> Decimal | None:
        return next((a.amount for a in self.amounts if a.qualifier == "B6"), None)

    @property
    def adjusted_total(self) -> Decimal:
        return sum(map(_AMOUNT_OF, self.adjustments), _ZERO)


@dataclass(frozen=True, slots=True)
class ClaimPayment835:
    patient_control_number: str  # CLP01
    status_code: str  # CLP02
    charge: Decimal  # CLP03
    paid: Decimal  # CLP04
    patient_responsibility: Decimal  # CLP05 (0 when absent)
    filing_indicator: str  # CLP06
    payer_claim_number: str  # CLP07
    facility_type: str  # CLP08
    frequency_code: str  # CLP09
    adjustments: tuple[Adjustment, ...]  # claim level (loop 2100 CAS)
    patient: Party | None  # NM1*QC
    subscriber: Party | None  # NM1*IL
    corrected_patient: Party | None  # NM1*74
    rendering_provider: Party | None  # NM1*82
    service_start: dt.date | None  # DTM*232
    service_end: dt.date | None  # DTM*233
    received_date: dt.date | None  # DTM*050
    references: tuple[Reference, ...]
    amounts: tuple[AmountInfo, ...]
    lines: tuple[ServiceLine835, ...]
    segment_index: int

    @property
    def line_adjustments(self) -> tuple[Adjustment, ...]:
        return tuple(chain.from_iterable(map(_ADJUSTMENTS_OF, self.lines)))

    @property
    def all_adjustments(self) -> tuple[Adjustment, ...]:
        return self.adjustments + self.line_adjustments

    @property
    def adjusted_total(self) -> Decimal:
        return sum(map(_AMOUNT_OF, self.all_adjustments), _ZERO)

    @property
    def is_reversal(self) -> bool:
        return self.status_code == REVERSAL_STATUS

    @property
    def is_denied(self) -> bool:
        """Denied: status 4, or nothing paid while the payer gave adjustment reasons."""
        if self.is_reversal:
            return False
        return self.status_code == DENIED_STATUS or (
            self.paid == _ZERO and self.charge != _ZERO and bool(self.all_adjustments)
        )


@dataclass(frozen=True, slots=True)
class ProviderAdjustment:
    """One PLB reason/reference/amount pair. Positive amounts reduce the payment."""

    provider_id: str  # PLB01
    fiscal_period_date: dt.date | None  # PLB02
    reason: str  # PLBnn-1
    reference: str  # PLBnn-2
    amount: Decimal
    segment_index: int


@dataclass(frozen=True, slots=True)
class Payment835:
    """One transaction set (ST..SE): a payment (or a non-payment) from one payer to one payee."""

    control_number: str  # ST02
    handling_code: str  # BPR01
    total_paid: Decimal  # BPR02 as written (not signed)
    credit_debit: str  # BPR03: C or D
    method: str  # BPR04
    payment_format: str  # BPR05
    payment_date: dt.date | None  # BPR16
    trace_number: str  # TRN02 (check or EFT number)
    payer_identifier: str  # TRN03
    payer_name: str  # N1*PR N102
    payer_id: str  # N1*PR N104, else REF*2U, else TRN03
    payee_name: str  # N1*PE N102
    payee_id_qualifier: str  # N1*PE N103 (XX = NPI, FI = tax id)
    payee_id: str  # N1*PE N104
    production_date: dt.date | None  # DTM*405
    claims: tuple[ClaimPayment835, ...]
    provider_adjustments: tuple[ProviderAdjustment, ...]
    warnings: tuple[str, ...]
    segment_index: int

    @property
    def payee_npi(self) -> str:
        return self.payee_id if self.payee_id_qualifier == "XX" else ""

    @property
    def signed_total(self) -> Decimal:
        """BPR02 with its sign: a debit (BPR03 = D) takes money back from the provider."""
        return -self.total_paid if self.credit_debit == "D" else self.total_paid

    @property
    def claims_paid_total(self) -> Decimal:
        return sum((c.paid for c in self.claims), _ZERO)

    @property
    def provider_adjustment_total(self) -> Decimal:
        return sum((p.amount for p in self.provider_adjustments), _ZERO)


@dataclass(frozen=True, slots=True)
class Remittance835:
    interchange_control_number: str  # ISA13, "" without an envelope
    group_control_numbers: tuple[str, ...]  # GS06 of each group
    sender_id: str  # ISA06 (or GS02)
    receiver_id: str  # ISA08 (or GS03)
    delimiters: Delimiters
    payments: tuple[Payment835, ...]
    warnings: tuple[str, ...]
    segment_count: int

    @property
    def enveloped(self) -> bool:
        return self.delimiters.enveloped

    @property
    def claims(self) -> tuple[ClaimPayment835, ...]:
        return tuple(c for p in self.payments for c in p.claims)

    @property
    def total_paid(self) -> Decimal:
        return sum((p.signed_total for p in self.payments), _ZERO)

    @property
    def all_warnings(self) -> tuple[str, ...]:
        return self.warnings + tuple(w for p in self.payments for w in p.warnings)


# --- element readers ------------------------------------------------------------------------


def _element(segment: list[str], number: int) -> str:
    return segment[number] if number < len(segment) else ""


def _is_number(raw: str) -> bool:
    digits = raw[1:] if raw[:1] == "-" else raw
    return digits.isascii() and digits.replace(".", "", 1).isdigit()


def _amount(
    segment: list[str], number: int, index: int, *, required: bool = True, money: bool = True
) -> Decimal | None:
    raw = segment[number].strip() if number < len(segment) else ""
    if not raw:
        if required:
            raise X835Error(index, segment[0], f"{segment[0]}{number:02d}", "the amount is missing")
        return None
    if len(raw) > _MAX_AMOUNT_TEXT or not _is_number(raw):
        name = f"{segment[0]}{number:02d}"
        raise X835Error(index, segment[0], name, f"{raw[:20]!r} is not a number")
    point = raw.find(".")
    if money and point >= 0 and len(raw) - point > 3:
        name = f"{segment[0]}{number:02d}"
        raise X835Error(index, segment[0], name, f"{raw!r} has more than two decimal places")
    return Decimal(raw)


def _required_amount(segment: list[str], number: int, index: int) -> Decimal:
    value = _amount(segment, number, index)
    assert value is not None  # noqa: S101 - required=True never returns None
    return value


def _date(raw: str) -> dt.date | None:
    if len(raw) != 8 or not raw.isdigit():
        return None
    try:
        return dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
    except ValueError:
        return None


# --- the parser -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    procedure: ProcedureCode
    charge: Decimal | None
    paid: Decimal | None
    revenue_code: str
    units: Decimal | None
    original_procedure: ProcedureCode | None
    original_units: Decimal | None
    segment_index: int
    shifted: bool = False
    service_date: dt.date | None = None
    service_end_date: dt.date | None = None
    adjustments: list[Adjustment] = field(default_factory=list)
    control_number: str = ""
    references: list[Reference] = field(default_factory=list)
    amounts: list[AmountInfo] = field(default_factory=list)
    remark_codes: list[str] = field(default_factory=list)

    def freeze(self) -> ServiceLine835:
        # positional, in ServiceLine835's field order (a keyword call costs a third more)
        return ServiceLine835(
            self.procedure,
            self.charge,
            self.paid,
            self.revenue_code,
            self.units,
            self.original_procedure,
            self.original_units,
            self.service_date,
            self.service_end_date,
            tuple(self.adjustments),
            self.control_number,
            tuple(self.references),
            tuple(self.amounts),
            tuple(self.remark_codes),
            self.segment_index,
        )


@dataclass(slots=True)
class _Claim:
    # CLP01..CLP09 as ClaimPayment835 takes them: patient_control_number .. frequency_code
    fields: tuple[str, str, Decimal, Decimal, Decimal, str, str, str, str]
    segment_index: int
    adjustments: list[Adjustment] = field(default_factory=list)
    parties: dict[str, Party] = field(default_factory=dict)
    dates: dict[str, dt.date | None] = field(default_factory=dict)
    references: list[Reference] = field(default_factory=list)
    amounts: list[AmountInfo] = field(default_factory=list)
    lines: list[ServiceLine835] = field(default_factory=list)
    line_adjusted: Decimal = _ZERO

    def freeze(self) -> ClaimPayment835:
        # positional, in ClaimPayment835's field order (a keyword call costs a third more)
        parties, dates = self.parties, self.dates
        return ClaimPayment835(
            *self.fields,
            tuple(self.adjustments),
            parties.get("QC"),
            parties.get("IL"),
            parties.get("74"),
            parties.get("82"),
            dates.get("232"),
            dates.get("233"),
            dates.get("050"),
            tuple(self.references),
            tuple(self.amounts),
            tuple(self.lines),
            self.segment_index,
        )


class _Parser:
    def __init__(self, delimiters: Delimiters, segments: list[list[str]]) -> None:
        self.delimiters = delimiters
        self.segments = segments
        self.warnings: list[str] = []
        self.payments: list[Payment835] = []
        self.group_numbers: list[str] = []
        self.isa: list[str] | None = None
        self.gs: list[str] | None = None
        self.closed_interchange = False
        # the open transaction set
        self.st: list[str] | None = None
        self.st_index = 0
        self.header: dict[str, object] = {}
        self.payment_warnings: list[str] = []
        self.n1 = ""
        self.claims: list[ClaimPayment835] = []
        self.plbs: list[ProviderAdjustment] = []
        self.claim: _Claim | None = None
        self.line: _Line | None = None
        # True from the set's BPR to its SE: a segment other than the envelope's goes straight
        # to its reader (what `run` checks for every segment holds then)
        self.body_open = False
        # Each distinct text read once per file: amounts (Decimal), numbers (money=False),
        # DTM dates, SVC composites read without a warning. All of them immutable.
        self.money: dict[str, Decimal] = {}
        self.numbers: dict[str, Decimal] = {}
        self.dates: dict[str, dt.date | None] = {}
        self.procedures: dict[str, ProcedureCode] = {}
        # CAS triplets (group, reason, amount text, quantity text) already read: one frozen
        # Adjustment serves every equal triplet of the file
        self.triplets: dict[tuple[str, str, str, str], Adjustment] = {}

    # -- amounts, read once per distinct text

    @staticmethod
    def _convert(
        cache: dict[str, Decimal], pattern: Callable[[str], object], raw: str
    ) -> Decimal | None:
        """`raw` as a Decimal remembered in `cache` when `pattern` (the strict form) matches;
        None sends the caller to `_amount`, which accepts or refuses it with its message."""
        if len(raw) <= _MAX_AMOUNT_TEXT and pattern(raw) is not None:
            value = cache[raw] = Decimal(raw)
            return value
        return None

    def amount(self, segment: list[str], number: int, index: int) -> Decimal:
        """`_required_amount`, each distinct text validated and converted once per file."""
        raw = segment[number] if number < len(segment) else ""
        value = self.money.get(raw)
        if value is None:
            value = self._convert(self.money, _MONEY_TEXT, raw)
        return _required_amount(segment, number, index) if value is None else value

    def optional_amount(self, segment: list[str], number: int, index: int) -> Decimal | None:
        """`_amount(..., required=False)`, as `amount` does it."""
        raw = segment[number] if number < len(segment) else ""
        value = self.money.get(raw)
        if value is None:
            value = self._convert(self.money, _MONEY_TEXT, raw)
        if value is None:
            return _amount(segment, number, index, required=False)
        return value

    def optional_number(self, segment: list[str], number: int, index: int) -> Decimal | None:
        """`_amount(..., required=False, money=False)`, as `amount` does it."""
        raw = segment[number] if number < len(segment) else ""
        value = self.numbers.get(raw)
        if value is None:
            value = self._convert(self.numbers, _NUMBER_TEXT, raw)
        if value is None:
            return _amount(segment, number, index, required=False, money=False)
        return value

    # -- driver

    def run(self) -> Remittance835:
        if not self.delimiters.enveloped:
            self.warnings.append("the file has no ISA/GS envelope (bare ST..SE)")
        handlers = {
            "ISA": self.on_isa,
            "IEA": self.on_iea,
            "GS": self.on_gs,
            "GE": self.on_ge,
            "ST": self.on_st,
            "SE": self.on_se,
        }
        body = {
            "BPR": self.on_bpr,
            "TRN": self.on_trn,
            "N1": self.on_n1,
            "REF": self.on_ref,
            "DTM": self.on_dtm,
            "CLP": self.on_clp,
            "CAS": self.on_cas,
            "NM1": self.on_nm1,
            "AMT": self.on_amt,
            "SVC": self.on_svc,
            "LQ": self.on_lq,
            "PLB": self.on_plb,
            "LX": self.on_lx,
        }
        body_open = False  # self.body_open, which only the slow path below changes
        for index, segment in enumerate(self.segments, start=1):
            tag = segment[0]
            read = body.get(tag)  # (no envelope segment has a body reader)
            if read is not None and body_open:
                # the checks below pass: not after IEA, inside ST..SE, after the BPR
                read(segment, index)
                continue
            if self.closed_interchange:
                raise X835Error(index, tag, "", "segment after the interchange trailer (IEA)")
            handler = handlers.get(tag)
            if handler is not None:
                handler(segment, index)
                body_open = self.body_open
                continue
            if self.st is None:
                raise X835Error(index, tag, "", "segment outside a transaction set (ST..SE)")
            if tag != "BPR" and "total_paid" not in self.header:
                raise X835Error(index, tag, "", "the transaction set must start with BPR")
            if read is not None:
                read(segment, index)
            body_open = self.body_open
        last = len(self.segments)
        if self.st is not None:
            raise X835Error(last, self.segments[-1][0], "", "the file ends before SE: truncated")
        if self.gs is not None:
            raise X835Error(last, self.segments[-1][0], "", "the file ends before GE: truncated")
        if self.isa is not None and not self.closed_interchange:
            raise X835Error(last, self.segments[-1][0], "", "the file ends before IEA: truncated")
        if not self.payments:
            raise X835Error(0, "", "", "the file holds no 835 transaction set (ST*835)")
        isa = self.isa or []
        return Remittance835(
            interchange_control_number=_element(isa, 13),
            group_control_numbers=tuple(self.group_numbers),
            sender_id=_element(isa, 6),
            receiver_id=_element(isa, 8),
            delimiters=self.delimiters,
            payments=tuple(self.payments),
            warnings=tuple(self.warnings),
            segment_count=len(self.segments),
        )

    # -- envelope

    def on_isa(self, segment: list[str], index: int) -> None:
        if self.isa is not None or index != 1:
            raise X835Error(index, "ISA", "", "only one interchange (ISA) per file, first")
        if len(segment) < 17:
            raise X835Error(index, "ISA", "", "the interchange header has fewer than 16 elements")
        self.isa = segment

    def on_iea(self, segment: list[str], index: int) -> None:
        if self.isa is None:
            raise X835Error(index, "IEA", "", "IEA without ISA")
        if self.gs is not None:
            raise X835Error(index, "IEA", "", "the functional group (GS) is not closed by GE")
        if _element(segment, 2) != _element(self.isa, 13):
            self.warnings.append(
                f"IEA02 {_element(segment, 2)!r} differs from ISA13 {_element(self.isa, 13)!r}"
            )
        self.closed_interchange = True
        self.body_open = False

    def on_gs(self, segment: list[str], index: int) -> None:
        if self.isa is None:
            raise X835Error(index, "GS", "", "GS without ISA")
        if self.gs is not None:
            raise X835Error(index, "GS", "", "the previous functional group is not closed by GE")
        if _element(segment, 1) != "HP":
            self.warnings.append(f"GS01 is {_element(segment, 1)!r}, not HP (claim payment)")
        self.gs = segment
        self.group_numbers.append(_element(segment, 6))

    def on_ge(self, segment: list[str], index: int) -> None:
        if self.gs is None:
            raise X835Error(index, "GE", "", "GE without GS")
        if self.st is not None:
            raise X835Error(index, "GE", "", "the transaction set (ST) is not closed by SE")
        if _element(segment, 2) != _element(self.gs, 6):
            self.warnings.append(
                f"GE02 {_element(segment, 2)!r} differs from GS06 {_element(self.gs, 6)!r}"
            )
        self.gs = None

    def on_st(self, segment: list[str], index: int) -> None:
        if self.st is not None:
            raise X835Error(index, "ST", "", "the previous transaction set is not closed by SE")
        if self.delimiters.enveloped and self.gs is None:
            raise X835Error(index, "ST", "", "ST outside a functional group (GS..GE)")
        if _element(segment, 1) != "835":
            raise X835Error(
                index, "ST", "ST01", f"{_element(segment, 1)!r} is not an 835 remittance"
            )
        if not _element(segment, 2):
            raise X835Error(index, "ST", "ST02", "the control number is missing")
        self.st = segment
        self.st_index = index
        self.header = {}
        self.payment_warnings = []
        self.n1 = ""
        self.claims = []
        self.plbs = []
        self.claim = None
        self.line = None
        self.body_open = False

    def on_se(self, segment: list[str], index: int) -> None:
        if self.st is None:
            raise X835Error(index, "SE", "", "SE without ST")
        # The segments from ST to this SE: every segment between them was read (any envelope
        # segment there, and any before the BPR, is refused).
        in_set = index - self.st_index + 1
        control = _element(self.st, 2)
        if _element(segment, 2) != control:
            raise X835Error(
                index,
                "SE",
                "SE02",
                f"{_element(segment, 2)!r} does not close transaction set {control!r}",
            )
        if _element(segment, 1) != str(in_set):
            self.payment_warnings.append(
                f"SE01 says {_element(segment, 1)!r} segments; the set has {in_set}"
            )
        self.body_open = False
        self.close_claim()
        self.payments.append(self.freeze_payment(index))
        self.st = None

    # -- header

    def on_bpr(self, segment: list[str], index: int) -> None:
        if "total_paid" in self.header:
            raise X835Error(index, "BPR", "", "a second BPR in one transaction set")
        handling = _element(segment, 1)
        if handling not in HANDLING_CODES:
            raise X835Error(index, "BPR", "BPR01", f"{handling!r} is not a handling code")
        total = _required_amount(segment, 2, index)
        if total < 0:
            raise X835Error(index, "BPR", "BPR02", "the total is negative (use BPR03 = D)")
        flag = _element(segment, 3)
        if flag not in {"C", "D"}:
            raise X835Error(index, "BPR", "BPR03", f"{flag!r} is not C (credit) or D (debit)")
        method = _element(segment, 4)
        if method not in PAYMENT_METHODS:
            raise X835Error(index, "BPR", "BPR04", f"{method!r} is not a payment method")
        raw_date = _element(segment, 16)
        payment_date = _date(raw_date)
        if not raw_date and len(segment) == 16:
            short = _element(segment, 15)
            account_data = any(_element(segment, n) for n in range(6, 15))
            if _date(short) is not None and not account_data:
                payment_date = _date(short)
                self.payment_warnings.append(
                    f"BPR has 15 elements: the date {short} in BPR15 is read as BPR16"
                )
            else:
                self.payment_warnings.append("BPR16 (payment date) is missing")
        elif payment_date is None:
            self.payment_warnings.append(f"BPR16 {raw_date[:10]!r} is not a valid date")
        self.header.update(
            handling_code=handling,
            total_paid=total,
            credit_debit=flag,
            method=method,
            payment_format=_element(segment, 5),
            payment_date=payment_date,
            bpr_index=index,
        )
        self.body_open = self.st is not None and not self.closed_interchange

    def on_trn(self, segment: list[str], index: int) -> None:
        if self.claim is not None or "trace_number" in self.header:
            raise X835Error(index, "TRN", "", "TRN belongs once in the header, before the claims")
        trace = _element(segment, 2)
        if not trace:
            raise X835Error(index, "TRN", "TRN02", "the trace number is missing")
        self.header["trace_number"] = trace
        self.header["payer_identifier"] = _element(segment, 3)

    def on_n1(self, segment: list[str], index: int) -> None:
        if self.claim is not None:
            raise X835Error(index, "N1", "", "N1 after the first claim (CLP)")
        entity = _element(segment, 1)
        self.n1 = entity
        if entity == "PR":
            self.header["payer_name"] = _element(segment, 2)
            self.header["payer_id"] = _element(segment, 4)
        elif entity == "PE":
            self.header["payee_name"] = _element(segment, 2)
            self.header["payee_id_qualifier"] = _element(segment, 3)
            self.header["payee_id"] = _element(segment, 4)

    def on_lx(self, segment: list[str], index: int) -> None:
        self.close_claim()
        self.n1 = ""

    def on_ref(self, segment: list[str], index: int) -> None:
        count = len(segment)
        reference = Reference(segment[1] if count > 1 else "", segment[2] if count > 2 else "")
        if self.line is not None:
            if reference.qualifier == "6R":
                self.line.control_number = reference.value
            self.line.references.append(reference)
        elif self.claim is not None:
            self.claim.references.append(reference)
        elif self.n1 == "PR" and reference.qualifier == "2U" and not self.header.get("payer_id"):
            self.header["payer_id"] = reference.value

    def on_dtm(self, segment: list[str], index: int) -> None:
        count = len(segment)
        qualifier = segment[1] if count > 1 else ""
        raw = segment[2] if count > 2 else ""
        dates = self.dates
        if raw in dates:
            value = dates[raw]
        else:
            value = dates[raw] = _date(raw)
        if value is None:
            self.payment_warnings.append(
                f"segment {index} (DTM) DTM02 {raw[:10]!r} is not a valid date"
            )
        if self.line is not None:
            if qualifier in {"472", "150"}:
                self.line.service_date = value
            elif qualifier == "151":
                self.line.service_end_date = value
        elif self.claim is not None:
            self.claim.dates[qualifier] = value
        elif qualifier == "405":
            self.header["production_date"] = value

    def on_amt(self, segment: list[str], index: int) -> None:
        target = self.line if self.line is not None else self.claim
        if target is None:
            return
        amount = self.amount(segment, 2, index)
        target.amounts.append(AmountInfo(segment[1] if len(segment) > 1 else "", amount))

    # -- claims

    def on_clp(self, segment: list[str], index: int) -> None:
        self.close_claim()
        pcn = _element(segment, 1).strip()
        if not pcn:
            raise X835Error(index, "CLP", "CLP01", "the patient control number is missing")
        status = _element(segment, 2)
        if status not in CLAIM_STATUS_CODES:
            raise X835Error(index, "CLP", "CLP02", f"{status!r} is not a claim status code")
        self.claim = _Claim(
            fields=(
                pcn,
                status,
                self.amount(segment, 3, index),  # charge
                self.amount(segment, 4, index),  # paid
                self.optional_amount(segment, 5, index) or _ZERO,  # patient responsibility
                _element(segment, 6),  # filing indicator
                _element(segment, 7),  # payer claim number
                _element(segment, 8),  # facility type
                _element(segment, 9),  # frequency code
            ),
            segment_index=index,
        )

    def on_nm1(self, segment: list[str], index: int) -> None:
        if self.claim is None or self.line is not None:
            return
        entity = _element(segment, 1)
        value = [element.strip() for element in segment[:10]]
        value += [""] * (10 - len(value))
        # positional, in Party's field order: entity, entity_type, last_name, first_name,
        # middle_name, suffix, id_qualifier, identifier
        self.claim.parties[entity] = Party(
            entity, value[2], value[3], value[4], value[5], value[7], value[8], value[9]
        )

    def on_cas(self, segment: list[str], index: int) -> None:
        target = self.line if self.line is not None else self.claim
        if target is None:
            raise X835Error(index, "CAS", "", "CAS outside a claim (CLP) or service line (SVC)")
        group = _element(segment, 1)
        if group not in ADJUSTMENT_GROUPS:
            raise X835Error(index, "CAS", "CAS01", f"{group!r} is not an adjustment group")
        if len(segment) > 2 + 3 * MAX_CAS_TRIPLETS:
            raise X835Error(index, "CAS", "", "more than six adjustment triplets")
        found = 0
        count = len(segment)
        adjustments = target.adjustments
        triplets = self.triplets
        for first in range(2, count, 3):
            reason = segment[first].strip()
            if not reason:
                if _element(segment, first + 1):
                    raise X835Error(
                        index, "CAS", f"CAS{first:02d}", "an amount without a reason code"
                    )
                continue
            raw = segment[first + 1] if first + 1 < count else ""
            raw_quantity = segment[first + 2] if first + 2 < count else ""
            key = (group, reason, raw, raw_quantity)
            adjustment = triplets.get(key)
            if adjustment is None:  # (the same texts read before were accepted)
                amount = self.amount(segment, first + 1, index)
                quantity = self.optional_number(segment, first + 2, index) if raw_quantity else None
                adjustment = triplets[key] = Adjustment(group, reason, amount, quantity)
            adjustments.append(adjustment)
            found += 1
        if not found:
            raise X835Error(index, "CAS", "CAS02", "the adjustment reason code is missing")

    def on_svc(self, segment: list[str], index: int) -> None:
        if self.claim is None:
            raise X835Error(index, "SVC", "", "SVC outside a claim (CLP)")
        self.close_line()
        raw = _element(segment, 1)
        elements = segment
        shifted = False
        if raw in PRODUCT_QUALIFIERS:
            # '*' written where ':' belongs: the code is in SVC02 and the rest moves right.
            code = _element(segment, 2)
            zero = _CODE_WITH_ZERO_DECIMALS.fullmatch(code)
            code = zero.group(1) if zero else code
            if not code:
                raise X835Error(index, "SVC", "SVC01", "the procedure code is missing")
            procedure = ProcedureCode(raw, code)
            elements = [segment[0], raw, *segment[3:]]
            shifted = True
        else:
            procedure = self.procedure(raw, index, "SVC01", required=True)  # type: ignore[assignment]
        count = len(elements)
        raw_original = elements[6] if count > 6 else ""
        original = (
            self.procedure(raw_original, index, "SVC06", required=False) if raw_original else None
        )
        # self.optional_amount / optional_number, each known text taken at once
        charge = self.money.get(elements[2]) if count > 2 else None
        if charge is None:
            charge = self.optional_amount(elements, 2, index)
        paid = self.money.get(elements[3]) if count > 3 else None
        if paid is None:
            paid = self.optional_amount(elements, 3, index)
        revenue_code = elements[4] if count > 4 else ""
        units = self.numbers.get(elements[5]) if count > 5 else None
        if units is None:
            units = self.optional_number(elements, 5, index)
        self.line = _Line(  # positional, in _Line's field order
            procedure,
            charge,
            paid,
            revenue_code,
            units,
            original,
            self.optional_number(elements, 7, index) if count > 7 else None,
            index,
            shifted,
        )

    def procedure(self, raw: str, index: int, name: str, *, required: bool) -> ProcedureCode | None:
        known = self.procedures.get(raw)
        if known is not None:
            return known
        if not raw:
            if required:
                raise X835Error(index, "SVC", name, "the procedure code is missing")
            return None
        separator = self.delimiters.component
        declared = separator in raw
        if not declared:
            other = raw[2:3]
            if raw[:2] in PRODUCT_QUALIFIERS and other and not other.isalnum() and other != " ":
                self.payment_warnings.append(
                    f"segment {index} (SVC) {name} uses {other!r} as component separator "
                    f"where {separator!r} is declared; read as a composite"
                )
                separator = other
            else:
                raise X835Error(
                    index, "SVC", name, f"{raw[:30]!r} is not a qualifier{separator}code composite"
                )
        parts = [part.strip() for part in raw.split(separator)]
        qualifier, code = parts[0], parts[1] if len(parts) > 1 else ""
        if qualifier not in PRODUCT_QUALIFIERS:
            raise X835Error(index, "SVC", name, f"{qualifier!r} is not a product/service qualifier")
        if not code:
            raise X835Error(index, "SVC", name, "the procedure code is missing")
        modifiers = tuple(part for part in parts[2:6] if part)
        procedure = ProcedureCode(qualifier, code, modifiers)
        if declared:  # (read without a warning: the same text reads the same next time)
            self.procedures[raw] = procedure
        return procedure

    def on_lq(self, segment: list[str], index: int) -> None:
        if self.line is not None and _element(segment, 1) == "HE" and _element(segment, 2):
            self.line.remark_codes.append(_element(segment, 2))

    def on_plb(self, segment: list[str], index: int) -> None:
        self.close_claim()
        provider = _element(segment, 1)
        if not provider:
            raise X835Error(index, "PLB", "PLB01", "the provider identifier is missing")
        if len(segment) > 3 + 2 * MAX_PLB_PAIRS:
            raise X835Error(index, "PLB", "", "more than six adjustment pairs")
        period = _date(_element(segment, 2))
        pairs = 0
        for first in range(3, 3 + 2 * MAX_PLB_PAIRS, 2):
            composite = _element(segment, first)
            if not composite:
                if _element(segment, first + 1):
                    raise X835Error(index, "PLB", f"PLB{first:02d}", "an amount without a reason")
                continue
            parts = composite.split(self.delimiters.component, 1)
            reason = parts[0].strip()
            if not reason:
                raise X835Error(index, "PLB", f"PLB{first:02d}", "the reason code is missing")
            amount = _required_amount(segment, first + 1, index)
            reference = parts[1].strip() if len(parts) > 1 else ""
            self.plbs.append(ProviderAdjustment(provider, period, reason, reference, amount, index))
            pairs += 1
        if not pairs:
            raise X835Error(index, "PLB", "PLB03", "the adjustment reason is missing")

    # -- closing loops, balance checks

    def close_line(self) -> None:
        line, claim = self.line, self.claim
        if line is None or claim is None:
            return
        self.line = None
        adjusted = _ZERO
        for adjustment in line.adjustments:
            adjusted += adjustment.amount
        if line.charge is not None and line.paid is not None:
            if line.charge - line.paid != adjusted:
                if line.shifted:
                    raise X835Error(
                        line.segment_index,
                        "SVC",
                        "SVC01",
                        f"{line.procedure.qualifier!r} has no procedure code composite and the "
                        "elements do not read as shifted either",
                    )
                raise X835Error(
                    line.segment_index,
                    "SVC",
                    "SVC03",
                    f"the line does not balance: charge {line.charge} - paid {line.paid} "
                    f"!= adjustments {adjusted}",
                )
        elif line.shifted:
            raise X835Error(
                line.segment_index, "SVC", "SVC01", "the procedure code composite is malformed"
            )
        if line.shifted:
            self.payment_warnings.append(
                f"segment {line.segment_index} (SVC) SVC01 has a '*' where the component "
                f"separator belongs; read as code {line.procedure.code} with the amounts one "
                "element to the right (the line balances)"
            )
        claim.line_adjusted += adjusted
        claim.lines.append(line.freeze())

    def close_claim(self) -> None:
        self.close_line()
        claim = self.claim
        if claim is None:
            return
        self.claim = None
        frozen = claim.freeze()
        adjusted = sum((a.amount for a in claim.adjustments), claim.line_adjusted)
        if frozen.charge - frozen.paid != adjusted:
            raise X835Error(
                claim.segment_index,
                "CLP",
                "CLP04",
                f"claim {frozen.patient_control_number!r} does not balance: charge "
                f"{frozen.charge} - paid {frozen.paid} != adjustments {adjusted}",
            )
        self.claims.append(frozen)

    def freeze_payment(self, se_index: int) -> Payment835:
        header = self.header
        if "total_paid" not in header:
            raise X835Error(se_index, "SE", "", "the transaction set has no BPR")
        if "trace_number" not in header:
            raise X835Error(se_index, "SE", "", "the transaction set has no TRN (trace number)")
        if "payer_name" not in header:
            raise X835Error(se_index, "SE", "", "the transaction set names no payer (N1*PR)")
        bpr_index = int(header["bpr_index"])  # type: ignore[call-overload]
        payment = Payment835(
            control_number=_element(self.st or [], 2),
            handling_code=str(header["handling_code"]),
            total_paid=header["total_paid"],  # type: ignore[arg-type]
            credit_debit=str(header["credit_debit"]),
            method=str(header["method"]),
            payment_format=str(header["payment_format"]),
            payment_date=header["payment_date"],  # type: ignore[arg-type]
            trace_number=str(header["trace_number"]),
            payer_identifier=str(header["payer_identifier"]),
            payer_name=str(header["payer_name"]),
            payer_id=str(header.get("payer_id") or header["payer_identifier"]),
            payee_name=str(header.get("payee_name", "")),
            payee_id_qualifier=str(header.get("payee_id_qualifier", "")),
            payee_id=str(header.get("payee_id", "")),
            production_date=header.get("production_date"),  # type: ignore[arg-type]
            claims=tuple(self.claims),
            provider_adjustments=tuple(self.plbs),
            warnings=tuple(self.payment_warnings),
            segment_index=self.st_index,
        )
        expected = payment.claims_paid_total - payment.provider_adjustment_total
        if payment.signed_total != expected:
            raise X835Error(
                bpr_index,
                "BPR",
                "BPR02",
                f"the payment does not balance: BPR02 {payment.signed_total} != claims paid "
                f"{payment.claims_paid_total} - provider adjustments "
                f"{payment.provider_adjustment_total}",
            )
        return payment


def parse_835(data: bytes | str) -> Remittance835:
    """Parse an 835 file. Raises `X835Error` (and nothing else) when it is refused.

    The cyclic garbage collector is paused while parsing: a large file allocates hundreds of
    thousands of small lists that hold no cycles, and collection passes over them cost more
    than half of the parse time.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        try:
            delimiters, segments = tokenize(data)
        except X835Error:
            raise
        except X12SyntaxError as exc:
            raise X835Error(exc.segment_index, exc.segment_id, exc.element, exc.message) from None
        return _Parser(delimiters, segments).run()
    finally:
        if collecting:
            gc.enable()


def summarize(payments: Sequence[Payment835]) -> dict[str, Decimal | int]:
    """Counts and totals of parsed payments (claims, paid, adjusted, provider adjustments)."""
    claims = [c for p in payments for c in p.claims]
    return {
        "payments": len(payments),
        "claims": len(claims),
        "paid": sum((c.paid for c in claims), _ZERO),
        "adjusted": sum((c.adjusted_total for c in claims), _ZERO),
        "provider_adjustments": sum((p.provider_adjustment_total for p in payments), _ZERO),
    }
