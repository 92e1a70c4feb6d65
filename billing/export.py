"""Export ready claims as X12 837P batches: one file per payer, validated before release.

`claims_export_837(*, actor, payer=None, out_dir)` does, for each payer with ready claims:

1. takes a control number from the locked `ControlNumberCounter` row (its own short
   transaction: a number is never handed out twice, even when the batch later fails);
2. reads the claims and their lines, diagnoses and prior payments with a handful of
   set-based queries (`values_list()` rows as the driver returns them, decimals converted
   once per distinct value; no per-claim queries, no long IN lists) and maps them onto
   `billing.x12.claim837` dataclasses, sharing equal pieces (plain service lines, addresses);
   a claim that cannot be written as a valid 837P is left ready and reported in `skipped`
   with the reason (SBR05, the Medicare secondary payer type, comes from the coverage's
   `medicare_secondary_type`, and the scrubber's SCR-MSP-001 stops a claim without it first);
3. renders the file and validates it with pyx12 (`billing.x12.validate`);
4. in one transaction: locks the claims, checks that none changed since they were read (else it
   starts over for that payer), writes the file, creates the `ClaimBatch` (released) and moves
   the claims to submitted with `billing.services.claims_mark_submitted` (one conditional
   UPDATE per 2,000 claims, bulk timeline rows, one `record_many` with an event per claim).

A file that pyx12 rejects is not released: the batch is stored as failed with pyx12's errors,
no file is written and the claims stay ready. Steps 2-3 hold no lock, so a long validation never
blocks other users (SQLite takes its write lock only for step 4).
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.db import connections, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_tasks import task

from audit.models import Action, Category, Outcome
from audit.services import record, record_many
from billing import services
from billing.models import (
    BatchStatus,
    Claim,
    ClaimBatch,
    ClaimLine,
    ClaimPriorAdjustment,
    ClaimPriorPayment,
    ClaimStatus,
    EncounterDiagnosis,
    Payer,
)
from billing.models import BillingProvider as BillingProviderModel
from billing.x12 import claim837 as x
from billing.x12.edi837 import Claim837Error, check_claim, render_837p
from billing.x12.validate import validate_837

if TYPE_CHECKING:
    from accounts.models import User

INTERCHANGE_COUNTER = "x12_interchange_control_number"
MAX_CONTROL_NUMBER = 999_999_999
CHUNK = 2000  # ids per IN (...) list: well under SQLite's variable limit
MAX_ATTEMPTS = 3
# Patient relationship to the subscriber (patients.Coverage.relationship) -> X12 codes.
PAT01 = {"spouse": "01", "child": "19", "parent": "G8", "other": "G8"}
SBR02_OTHER = {"self": "18", "spouse": "01", "child": "19", "parent": "G8", "other": "G8"}
SAFE_FILE_PART = re.compile(r"[^A-Za-z0-9_-]+")

Progress = Callable[[int, int], None]
T = TypeVar("T")


class ExportError(ValueError):
    """The export cannot start (bad output folder, exhausted control numbers, ...)."""


@dataclass
class ExportFile:
    payer_id: str
    path: Path | None
    batch_public_id: str
    claims: int
    total_charge: Decimal
    released: bool
    errors: list[str] = field(default_factory=list)


@dataclass
class ExportResult:
    files: list[ExportFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (PCN, why)
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def released(self) -> list[ExportFile]:
        return [f for f in self.files if f.released]

    @property
    def failed(self) -> list[ExportFile]:
        return [f for f in self.files if not f.released]

    @property
    def claims(self) -> int:
        return sum(f.claims for f in self.released)

    @property
    def total_charge(self) -> Decimal:
        return sum((f.total_charge for f in self.released), Decimal("0.00"))


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _setting(name: str, default: str) -> str:
    return str(getattr(settings, name, "") or os.environ.get(name, "") or default)


# ---- reading and mapping --------------------------------------------------------------------

CLAIM_FIELDS = (
    "id",
    "updated_at",
    "patient_control_number",
    "frequency_code",
    "replaces__payer_claim_number",
    "sequence",
    "place_of_service",
    "billing_provider_id",
    "encounter_id",
    "patient__family_name",
    "patient__given_name",
    "patient__middle_name",
    "patient__birth_date",
    "patient__sex_at_birth",
    "patient__address_line1",
    "patient__address_line2",
    "patient__city",
    "patient__state",
    "patient__postal_code",
    "coverage__member_id",
    "coverage__group_number",
    "coverage__plan_name",
    "coverage__subscriber_name",
    "coverage__subscriber_birth_date",
    "coverage__relationship",
    "rendering_practitioner__npi",
    "rendering_practitioner__given_name",
    "rendering_practitioner__family_name",
    "rendering_practitioner__billing_profile__taxonomy_code",
    "coverage__medicare_secondary_type",
)
CLAIM_ID, CLAIM_UPDATED_AT, CLAIM_PCN = 0, 1, 2
CLAIM_BILLING_PROVIDER = CLAIM_FIELDS.index("billing_provider_id")
CLAIM_ENCOUNTER = CLAIM_FIELDS.index("encounter_id")
LINE_FIELDS = (
    "claim_id",
    "id",
    "code",
    "modifier1",
    "modifier2",
    "modifier3",
    "modifier4",
    "units",
    "pointer1",
    "pointer2",
    "pointer3",
    "pointer4",
    "service_date",
    "charge",
    "place_of_service",
)
PRIOR_PAYMENT_FIELDS = (
    "claim_id",
    "claim_line_id",
    "payer_id",
    "payer__name",
    "payer__payer_id",
    "payer__claim_filing_indicator",
    "amount",
    "paid_units",
    "paid_date",
    "source_claim__sequence",
    "source_claim__coverage__member_id",
    "source_claim__coverage__group_number",
    "source_claim__coverage__subscriber_name",
    "source_claim__coverage__relationship",
    "source_claim__coverage__medicare_secondary_type",
)
PRIOR_ADJUSTMENT_FIELDS = (
    "claim_id",
    "claim_line_id",
    "payer_id",
    "group_code",
    "reason_code",
    "amount",
    "quantity",
)


def _address(line1: str, line2: str, city: str, state: str, postal_code: str) -> x.Address | None:
    if not (line1 and city and state and postal_code):
        return None
    return x.Address(line1, city, state, postal_code, line2=line2 or "")


def split_name(full_name: str) -> tuple[str, str]:
    """'Last, First' or 'First Middle Last' -> (last, first)."""
    text = " ".join((full_name or "").split())
    if "," in text:
        last, _, first = text.partition(",")
        return last.strip(), first.strip()
    parts = text.split(" ")
    if len(parts) == 1:
        return parts[0], ""
    return parts[-1], " ".join(parts[:-1])


def _sex(value: str) -> str:
    return value if value in ("M", "F") else "U"


def _billing_provider(row: BillingProviderModel) -> x.BillingProvider:
    return x.BillingProvider(
        npi=row.npi,
        name=row.name,
        taxonomy=row.taxonomy_code,
        ein=row.tax_id,
        address=x.Address(
            row.address_line1, row.city, row.state, row.postal_code, line2=row.address_line2
        ),
    )


def _payer(payer: Payer) -> x.Payer:
    return x.Payer(
        payer.name,
        payer.payer_id,
        _address(
            payer.address_line1, payer.address_line2, payer.city, payer.state, payer.postal_code
        ),
    )


def _raw_rows(queryset: QuerySet[Any, Any]) -> list[tuple[Any, ...]]:
    """The rows of a `values_list()` query as the database driver returns them, without
    Django's per-value converters (the hot cost of reading 40,000 lines). Both backends return
    dates and datetimes typed (SQLite through Django's registered converters, naive UTC);
    decimals are converted by `_Decimals`. Used only for comparing and rendering, never saved."""
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


class _Decimals(dict[Any, Any]):
    """Raw numeric value -> Decimal, each distinct value converted once (SQLite returns
    NUMERIC columns as int or float, PostgreSQL as Decimal)."""

    def __missing__(self, raw: Any) -> Decimal | None:
        if raw is None or isinstance(raw, Decimal):
            value = raw
        elif isinstance(raw, float):
            value = Decimal(repr(raw))
        else:
            value = Decimal(raw)
        self[raw] = value
        return value


class _Mapper:
    """Maps one payer's claim rows (tuples in CLAIM_FIELDS order) onto 837P dataclasses, with
    every related row preloaded by a few set-based queries and identical pieces (addresses,
    rendering providers, plain service lines) built once."""

    def __init__(self, payer: Payer, rows: list[tuple[Any, ...]]) -> None:
        self.payer = _payer(payer)
        self.filing_indicator = payer.claim_filing_indicator
        self.decimals = _Decimals()
        self.addresses: dict[tuple[str, ...], x.Address | None] = {}
        self.renderings: dict[tuple[str, ...], x.RenderingProvider] = {}
        self.plain_lines: dict[tuple[Any, ...], x.ServiceLine] = {}
        claim_ids = {row[0] for row in rows}
        # The ready claims of this payer, as a subquery: no long IN lists to build and send.
        ready = Claim.objects.filter(status=ClaimStatus.READY, payer=payer).order_by()
        self.lines: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        self._add_lines(ClaimLine.objects.filter(claim_id__in=ready.values("pk")), claim_ids)
        # A claim that left ready between the two reads: fetch by id (the lock check before the
        # release then notices the change and starts over).
        for chunk in _chunks(sorted(pk for pk in claim_ids if pk not in self.lines)):
            self._add_lines(ClaimLine.objects.filter(claim_id__in=chunk), claim_ids)
        self.payments: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self.adjustments: dict[int, list[dict[str, Any]]] = defaultdict(list)
        decimals = self.decimals
        for raw in _raw_rows(
            ClaimPriorPayment.objects.filter(claim_id__in=ready.values("pk"))
            .order_by("claim_id", "id")
            .values_list(*PRIOR_PAYMENT_FIELDS)
        ):
            if raw[0] in claim_ids:
                payment = dict(zip(PRIOR_PAYMENT_FIELDS, raw, strict=True))
                payment["amount"] = decimals[payment["amount"]]
                payment["paid_units"] = decimals[payment["paid_units"]]
                self.payments[raw[0]].append(payment)
        for raw in _raw_rows(
            ClaimPriorAdjustment.objects.filter(claim_id__in=ready.values("pk"))
            .order_by("claim_id", "id")
            .values_list(*PRIOR_ADJUSTMENT_FIELDS)
        ):
            if raw[0] in claim_ids:
                adjustment = dict(zip(PRIOR_ADJUSTMENT_FIELDS, raw, strict=True))
                adjustment["amount"] = decimals[adjustment["amount"]]
                adjustment["quantity"] = decimals[adjustment["quantity"]]
                self.adjustments[raw[0]].append(adjustment)
        encounter_ids = {row[CLAIM_ENCOUNTER] for row in rows}
        codes: dict[int, list[str]] = defaultdict(list)
        dx_query = EncounterDiagnosis.objects.order_by("encounter_id", "position")
        for encounter_id, code in _raw_rows(
            dx_query.filter(encounter_id__in=ready.values("encounter_id")).values_list(
                "encounter_id", "code"
            )
        ):
            if encounter_id in encounter_ids:
                codes[encounter_id].append(code)
        for chunk in _chunks(sorted(pk for pk in encounter_ids if pk not in codes)):
            for encounter_id, code in _raw_rows(
                dx_query.filter(encounter_id__in=chunk).values_list("encounter_id", "code")
            ):
                codes[encounter_id].append(code)
        self.diagnoses = {pk: tuple(found) for pk, found in codes.items()}
        provider_ids = {row[CLAIM_BILLING_PROVIDER] for row in rows}
        self.providers = {
            p.pk: _billing_provider(p)
            for p in BillingProviderModel.objects.filter(pk__in=provider_ids)
        }

    def _add_lines(self, lines: QuerySet[ClaimLine], claim_ids: set[int]) -> None:
        for raw in _raw_rows(lines.order_by("claim_id", "line_number").values_list(*LINE_FIELDS)):
            if raw[0] in claim_ids:
                self.lines[raw[0]].append(raw)

    def _address(self, *parts: str) -> x.Address | None:
        try:
            return self.addresses[parts]
        except KeyError:
            address = self.addresses[parts] = _address(*parts)
            return address

    def claim(self, row: tuple[Any, ...]) -> x.Claim:
        """Raises Claim837Error when the claim lacks something the 837P needs."""
        (
            claim_id,
            _updated_at,
            control_number,
            frequency_code,
            original_claim_number,
            sequence,
            place_of_service,
            _billing_provider_id,
            encounter_id,
            family_name,
            given_name,
            middle_name,
            birth_date,
            sex_at_birth,
            address_line1,
            address_line2,
            city,
            state,
            postal_code,
            member_id,
            group_number,
            plan_name,
            subscriber_name,
            subscriber_birth_date,
            relationship,
            rendering_npi,
            rendering_given_name,
            rendering_family_name,
            rendering_taxonomy,
            medicare_secondary_type,
        ) = row
        patient_address = self._address(address_line1, address_line2, city, state, postal_code)
        if patient_address is None:
            raise Claim837Error("the patient's address (street, city, state, ZIP) is incomplete")
        relationship = relationship or "self"
        group_name = "" if group_number else plan_name
        if relationship == "self":
            subscriber = x.Subscriber(
                member_id,
                family_name,
                given_name,
                middle_name,
                birth_date,
                _sex(sex_at_birth),
                patient_address,
                group_number,
                group_name,
                sequence,
                self.filing_indicator,
                medicare_secondary_type or "",
            )
            patient = None
        else:
            last, first = split_name(subscriber_name)
            if not last:
                raise Claim837Error("the coverage has no subscriber name for a dependent patient")
            subscriber = x.Subscriber(
                member_id=member_id,
                last_name=last,
                first_name=first,
                birth_date=subscriber_birth_date,
                group_number=group_number,
                group_name=group_name,
                responsibility=sequence,
                filing_indicator=self.filing_indicator,
                insurance_type=medicare_secondary_type or "",
            )
            patient = x.Patient(
                last_name=family_name,
                first_name=given_name,
                middle_name=middle_name,
                relationship=PAT01.get(relationship, "G8"),
                birth_date=birth_date,
                sex=_sex(sex_at_birth),
                address=patient_address,
            )
        line_rows = self.lines.get(claim_id, ())
        payments = self.payments.get(claim_id)
        if payments:
            adjustments = self.adjustments.get(claim_id, [])
            other_payers = self._other_payers(payments, adjustments, (family_name, given_name))
            lines = tuple(self._line(line, payments, adjustments) for line in line_rows)
        else:
            other_payers = ()
            lines = tuple(self._plain_line(line) for line in line_rows)
        rendering = None
        if rendering_npi:
            key = (rendering_npi, rendering_family_name, rendering_given_name, rendering_taxonomy)
            rendering = self.renderings.get(key)
            if rendering is None:
                rendering = self.renderings[key] = x.RenderingProvider(
                    npi=rendering_npi,
                    last_name=rendering_family_name,
                    first_name=rendering_given_name,
                    taxonomy=rendering_taxonomy or "",
                )
        return x.Claim(
            control_number,
            subscriber,
            self.payer,
            place_of_service,
            self.diagnoses.get(encounter_id, ()),
            lines,
            patient,
            frequency_code,
            original_claim_number or "",
            rendering,
            other_payers,
        )

    def _plain_line(self, raw: tuple[Any, ...]) -> x.ServiceLine:
        """A line no other payer adjudicated: equal lines (same code, charge, date, ...) are
        one shared, immutable object."""
        key = raw[2:]
        line = self.plain_lines.get(key)
        if line is None:
            (code, mod1, mod2, mod3, mod4, units, p1, p2, p3, p4, day, charge, pos) = key
            line = self.plain_lines[key] = x.ServiceLine(
                procedure_code=code,
                charge=self.decimals[charge],
                units=self.decimals[units],
                service_date=day,
                diagnosis_pointers=tuple(p for p in (p1, p2, p3, p4) if p),
                modifiers=tuple(m for m in (mod1, mod2, mod3, mod4) if m),
                place_of_service=pos or "",
            )
        return line

    def _line(
        self,
        raw: tuple[Any, ...],
        payments: list[dict[str, Any]],
        adjustments: list[dict[str, Any]],
    ) -> x.ServiceLine:
        plain = self._plain_line(raw)
        line_id = raw[1]
        adjudications = []
        for payment in payments:
            if payment["claim_line_id"] != line_id:
                continue
            paid_date = payment["paid_date"] or self._claim_paid_date(payments, payment)
            if paid_date is None:
                raise Claim837Error("a prior payer's line payment has no adjudication date")
            adjudications.append(
                x.LineAdjudication(
                    payer_id=payment["payer__payer_id"],
                    paid_amount=payment["amount"],
                    procedure_code=plain.procedure_code,
                    units=payment["paid_units"] or plain.units,
                    adjudication_date=paid_date,
                    modifiers=plain.modifiers,
                    adjustments=tuple(
                        x.Adjustment(a["group_code"], a["reason_code"], a["amount"], a["quantity"])
                        for a in adjustments
                        if a["claim_line_id"] == line_id and a["payer_id"] == payment["payer_id"]
                    ),
                )
            )
        if not adjudications:
            return plain
        return dataclasses.replace(plain, adjudications=tuple(adjudications))

    @staticmethod
    def _claim_paid_date(payments: list[dict[str, Any]], line_payment: dict[str, Any]) -> Any:
        for payment in payments:
            if payment["payer_id"] == line_payment["payer_id"] and payment["paid_date"]:
                return payment["paid_date"]
        return None

    def _other_payers(
        self,
        payments: list[dict[str, Any]],
        adjustments: list[dict[str, Any]],
        patient_name: tuple[str, str],
    ) -> tuple[x.OtherPayer, ...]:
        by_payer: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for payment in payments:
            by_payer[payment["payer_id"]].append(payment)
        others = []
        for payer_pk, rows in by_payer.items():
            first = rows[0]
            claim_level = [r for r in rows if r["claim_line_id"] is None]
            paid = sum((r["amount"] for r in (claim_level or rows)), Decimal("0.00"))
            member_id = first["source_claim__coverage__member_id"]
            if not member_id:
                raise Claim837Error(
                    f"the prior payment by {first['payer__payer_id']} is not linked to the "
                    "claim (and coverage) it paid"
                )
            relationship = first["source_claim__coverage__relationship"] or "self"
            if relationship == "self":
                last, given = patient_name
            else:
                last, given = split_name(first["source_claim__coverage__subscriber_name"] or "")
                if not last:
                    raise Claim837Error("the prior coverage has no subscriber name")
            others.append(
                x.OtherPayer(
                    responsibility=first["source_claim__sequence"] or "P",
                    relationship=SBR02_OTHER.get(relationship, "G8"),
                    filing_indicator=first["payer__claim_filing_indicator"],
                    subscriber=x.OtherSubscriber(member_id, last, given),
                    payer=x.Payer(first["payer__name"], first["payer__payer_id"]),
                    paid_amount=paid,
                    adjustments=tuple(
                        x.Adjustment(a["group_code"], a["reason_code"], a["amount"], a["quantity"])
                        for a in adjustments
                        if a["claim_line_id"] is None and a["payer_id"] == payer_pk
                    ),
                    group_number=first["source_claim__coverage__group_number"] or "",
                    insurance_type=first["source_claim__coverage__medicare_secondary_type"] or "",
                    adjudication_date=next(
                        (r["paid_date"] for r in claim_level if r["paid_date"]), None
                    ),
                )
            )
        return tuple(others)


# ---- the export -------------------------------------------------------------------------------


class _ClaimsChangedError(Exception):
    """A claim left ready or changed between reading and releasing the batch."""


def _ready_rows(payer: Payer) -> list[tuple[Any, ...]]:
    return _raw_rows(
        Claim.objects.filter(status=ClaimStatus.READY, payer=payer)
        .order_by("billing_provider_id", "id")
        .values_list(*CLAIM_FIELDS)
    )


def _next_interchange_number() -> int:
    with transaction.atomic():
        number = services.control_number_next(INTERCHANGE_COUNTER)
    if number > MAX_CONTROL_NUMBER:
        raise ExportError("the X12 interchange control numbers (ISA13) are used up")
    return number


def _file_name(payer: Payer, number: int) -> str:
    safe = SAFE_FILE_PART.sub("", payer.payer_id)[:30] or "payer"
    return f"837P-{safe}-{number:09d}.x12"


def _submitter(provider: BillingProviderModel | None) -> tuple[x.Submitter, str]:
    name = _setting("PATIENTDESK_X12_SUBMITTER_NAME", provider.name if provider else "PATIENTDESK")
    sender_id = _setting(
        "PATIENTDESK_X12_SENDER_ID", provider.tax_id if provider else "PATIENTDESK"
    )
    contact = (provider.contact_name if provider else "") or "Billing office"
    phone = (provider.phone if provider else "") or "0000000000"
    return x.Submitter(
        name, sender_id, contact, re.sub(r"\D", "", phone) or "0000000000"
    ), sender_id


def _changed_since_read(rows: list[tuple[Any, ...]]) -> bool:
    """Lock the claims (in id order) and tell whether any left ready or changed since read."""
    seen = {row[CLAIM_ID]: row[CLAIM_UPDATED_AT] for row in rows}
    locked = 0
    for chunk in _chunks(sorted(seen)):
        for pk, status, updated_at in _raw_rows(
            Claim.objects.select_for_update()
            .filter(pk__in=chunk)
            .order_by("pk")
            .values_list("pk", "status", "updated_at")
        ):
            locked += 1
            if status != ClaimStatus.READY or updated_at != seen[pk]:
                return True
    return locked != len(seen)


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(text, encoding="ascii", newline="")
    tmp.replace(path)


def _export_payer(
    *,
    actor: User | None,
    payer: Payer,
    out_dir: Path,
    result: ExportResult,
    usage_indicator: str,
    progress: Callable[[int], None],
) -> None:
    timings = result.seconds
    for _attempt in range(MAX_ATTEMPTS):
        started = time.perf_counter()
        rows = _ready_rows(payer)
        if not rows:
            return
        mapper = _Mapper(payer, rows)
        by_provider: dict[x.BillingProvider, list[x.Claim]] = defaultdict(list)
        included: list[tuple[Any, ...]] = []
        skipped: list[tuple[str, str]] = []
        for row in rows:
            try:
                claim = mapper.claim(row)
                check_claim(claim)
            except Claim837Error as error:
                skipped.append((row[CLAIM_PCN], str(error)))
                continue
            by_provider[mapper.providers[row[CLAIM_BILLING_PROVIDER]]].append(claim)
            included.append(row)
        timings["read_and_map"] += time.perf_counter() - started
        if not included:
            result.skipped += skipped
            progress(len(skipped))
            return
        number = _next_interchange_number()
        started = time.perf_counter()
        default_provider = (
            BillingProviderModel.objects.filter(is_default=True).first()
            or BillingProviderModel.objects.filter(pk=included[0][CLAIM_BILLING_PROVIDER]).first()
        )
        submitter, sender_id = _submitter(default_provider)
        receiver_id = _setting("PATIENTDESK_X12_RECEIVER_ID", payer.payer_id)
        text = render_837p(
            claims_by_billing_provider=by_provider,
            submitter=submitter,
            receiver=x.Receiver(payer.name, receiver_id),
            interchange_control_number=number,
            group_control_number=number,
            transaction_control_number=number,
            sender_id=sender_id,
            receiver_id=receiver_id,
            created_at=timezone.now(),
            usage_indicator=usage_indicator,
            claims_checked=True,
        )
        total = sum((c.total_charge for cs in by_provider.values() for c in cs), Decimal("0.00"))
        timings["render"] += time.perf_counter() - started
        started = time.perf_counter()
        verdict = validate_837(text)
        timings["validate"] += time.perf_counter() - started
        file_name = _file_name(payer, number)
        digest = hashlib.sha256(text.encode("ascii")).hexdigest()
        if not verdict.ok:
            batch = _record_failed_batch(
                actor=actor,
                payer=payer,
                number=number,
                file_name=file_name,
                text=text,
                digest=digest,
                claims=len(included),
                total=total,
                errors=verdict.errors,
            )
            result.files.append(
                ExportFile(
                    payer.payer_id,
                    None,
                    str(batch.public_id),
                    len(included),
                    total,
                    False,
                    list(verdict.errors),
                )
            )
            result.skipped += skipped
            progress(len(included) + len(skipped))
            return
        started = time.perf_counter()
        path = out_dir / file_name
        try:
            with transaction.atomic():
                if _changed_since_read(included):
                    raise _ClaimsChangedError
                _write(path, text)
                batch = ClaimBatch.objects.create(
                    payer=payer,
                    file_name=file_name,
                    interchange_control_number=number,
                    group_control_number=number,
                    transaction_set_control_number=f"{number:04d}",
                    created_by=actor if actor is not None and actor.is_authenticated else None,
                    claim_count=len(included),
                    total_charge=total,
                    sha256=digest,
                    content=text,
                    status=BatchStatus.RELEASED,
                    released_at=timezone.now(),
                )
                services.claims_mark_submitted(
                    actor=actor, claim_ids=[row[CLAIM_ID] for row in included], batch=batch
                )
                record(
                    actor=actor,
                    action=Action.EXPORT,
                    event="claim_batch.released",
                    category=Category.BILLING,
                    obj=batch,
                    reason=f"{len(included)} claims to payer {payer.payer_id}",
                )
        except _ClaimsChangedError:
            timings["write_and_submit"] += time.perf_counter() - started
            continue  # a claim changed while we rendered: read them again (skips included)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        timings["write_and_submit"] += time.perf_counter() - started
        result.files.append(
            ExportFile(payer.payer_id, path, str(batch.public_id), len(included), total, True)
        )
        result.skipped += skipped
        progress(len(included) + len(skipped))
        return
    raise ExportError(f"claims of payer {payer.payer_id} kept changing during the export")


@transaction.atomic
def _record_failed_batch(
    *,
    actor: User | None,
    payer: Payer,
    number: int,
    file_name: str,
    text: str,
    digest: str,
    claims: int,
    total: Decimal,
    errors: list[str],
) -> ClaimBatch:
    batch = ClaimBatch.objects.create(
        payer=payer,
        file_name=file_name,
        interchange_control_number=number,
        group_control_number=number,
        transaction_set_control_number=f"{number:04d}",
        created_by=actor if actor is not None and actor.is_authenticated else None,
        claim_count=claims,
        total_charge=total,
        sha256=digest,
        content=text,
        status=BatchStatus.FAILED,
        validation_errors=list(errors[:200]),
    )
    record(
        actor=actor,
        action=Action.EXPORT,
        event="claim_batch.failed",
        category=Category.BILLING,
        obj=batch,
        outcome=Outcome.FAILURE,
        reason=f"pyx12 found {len(errors)} errors; {claims} claims stay ready",
    )
    return batch


def claims_export_837(
    *,
    actor: User | None,
    payer: Payer | None = None,
    out_dir: str | os.PathLike[str],
    progress: Progress | None = None,
    usage_indicator: str | None = None,
) -> ExportResult:
    """Write one validated 837P file per payer with ready claims (or for `payer` only), mark
    the claims submitted, and report what was written, failed or skipped."""
    folder = Path(out_dir)
    if not folder.is_dir():
        raise ExportError(f"the output folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ExportError(f"the output folder {folder} is not writable")
    usage = usage_indicator or _setting("PATIENTDESK_X12_USAGE", "P")
    if usage not in ("P", "T"):
        raise ExportError("the X12 usage indicator must be P (production) or T (test)")
    payers: Iterable[Payer]
    if payer is not None:
        payers = [payer]
    else:
        payer_ids = (
            Claim.objects.filter(status=ClaimStatus.READY)
            .order_by()
            .values_list("payer_id", flat=True)
            .distinct()
        )
        payers = Payer.objects.filter(pk__in=list(payer_ids)).order_by("payer_id")
    total = Claim.objects.filter(status=ClaimStatus.READY)
    if payer is not None:
        total = total.filter(payer=payer)
    expected = total.count()
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(min(done, expected), expected)

    result = ExportResult()
    # Tens of thousands of short-lived rows and dataclasses, none in a reference cycle: the
    # cyclic collector's passes would cost as much as the mapping itself, so pause it.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for each in payers:
            _export_payer(
                actor=actor,
                payer=each,
                out_dir=folder,
                result=result,
                usage_indicator=usage,
                progress=advance,
            )
    finally:
        if collecting:
            gc.enable()
    return result


# ---- batches screen: background build, scope, download ----------------------------------------


def default_out_dir() -> Path:
    """Where the screen's background builds write files (the batch row keeps the content too)."""
    folder = Path(_setting("PATIENTDESK_X12_OUT_DIR", str(Path(settings.BASE_DIR) / "var" / "x12")))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@task(queue_name="default")
def export_837_task(actor_id: int | None, payer_pk: int | None, expected: int) -> dict[str, Any]:
    """The screen's "build batches" button: the same export, run by a worker. `expected` (the
    ready claims when it was queued) lets the progress poll show how far it has got."""
    from accounts.models import User

    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    payer = Payer.objects.filter(pk=payer_pk).first() if payer_pk else None
    result = claims_export_837(actor=actor, payer=payer, out_dir=default_out_dir())
    return {
        "released": len(result.released),
        "failed": len(result.failed),
        "claims": result.claims,
        "total_charge": str(result.total_charge),
        "skipped": len(result.skipped),
    }


def ready_claims_count(payer: Payer | None = None) -> int:
    claims = Claim.objects.filter(status=ClaimStatus.READY)
    return (claims.filter(payer=payer) if payer is not None else claims).count()


def batch_build_enqueue(*, actor: User, payer: Payer | None) -> str:
    """Queue a background export (after commit) and audit the request; returns the task id."""
    expected = ready_claims_count(payer)
    task_result = export_837_task.enqueue(actor.pk, payer.pk if payer else None, expected)
    record(
        actor=actor,
        action=Action.EXPORT,
        event="claim_batch.build",
        category=Category.BILLING,
        object_type="django_tasks_db.DBTaskResult",
        object_id=str(task_result.id),
        reason=f"{expected} ready claims" + (f" of payer {payer.payer_id}" if payer else ""),
    )
    return str(task_result.id)


@dataclass(frozen=True)
class BuildProgress:
    status: str  # READY, RUNNING, SUCCESSFUL, FAILED (django-tasks)
    expected: int
    remaining: int
    summary: dict[str, Any]

    @property
    def finished(self) -> bool:
        return self.status in ("SUCCESSFUL", "FAILED")

    @property
    def done(self) -> int:
        if self.status == "SUCCESSFUL":
            return self.expected
        return max(0, self.expected - self.remaining)


def batch_build_progress(*, task_id: str) -> BuildProgress | None:
    from django_tasks_db.models import DBTaskResult

    row = DBTaskResult.objects.filter(pk=task_id, task_path=export_837_task.module_path).first()
    if row is None:
        return None
    args = row.args_kwargs.get("args", [None, None, 0])
    payer = Payer.objects.filter(pk=args[1]).first() if args[1] else None
    return BuildProgress(
        status=str(row.status),
        expected=int(args[2] or 0),
        remaining=ready_claims_count(payer),
        summary=row.return_value if isinstance(row.return_value, dict) else {},
    )


def batches_for_user(*, user: User, limit: int = 50) -> list[ClaimBatch]:
    """Batches with a claim at one of the user's locations, and failed batches (no claims)."""
    from django.db.models import Exists, OuterRef, Q

    in_scope = Claim.objects.filter(
        batch=OuterRef("pk"), patient__home_location_id__in=user.location_ids
    )
    return list(
        ClaimBatch.objects.select_related("payer")
        .filter(Q(Exists(in_scope)) | Q(status=BatchStatus.FAILED))
        .defer("content")
        .order_by("-created_at", "-id")[:limit]
    )


def batch_download_for_user(*, user: User, public_id: Any) -> ClaimBatch:
    """A released batch whose every claim is at the user's locations (else 404, audited);
    the download is audited once per patient in the file."""
    from django.http import Http404

    batch = ClaimBatch.objects.select_related("payer").filter(public_id=public_id).first()
    claims = (
        list(
            batch.claims.values_list("public_id", "patient__public_id", "patient__home_location_id")
        )
        if batch is not None
        else []
    )
    allowed = set(user.location_ids)
    if (
        batch is None
        or batch.status != BatchStatus.RELEASED
        or not claims
        or any(location not in allowed for _, _, location in claims)
    ):
        record(
            actor=user,
            action=Action.EXPORT,
            event="claim_batch.download",
            category=Category.BILLING,
            object_type="billing.ClaimBatch",
            object_id=str(public_id),
            outcome=Outcome.DENIED,
        )
        raise Http404("No such batch.")
    record_many(
        {
            "actor": user,
            "action": Action.EXPORT,
            "event": "claim_batch.download",
            "category": Category.BILLING,
            "patient_public_id": patient_id,
            "object_type": "billing.ClaimBatch",
            "object_id": str(batch.public_id),
            "reason": f"claim {claim_id}",
        }
        for claim_id, patient_id, _ in claims
    )
    return batch
