"""Interface writes: inbound ADT applied to patients, the outbound SIU queue and its delivery,
calendar feed tokens. Each write is atomic and audited.

Inbound ADT (MLLP listener and file drop alike, `inbound_receive`):
  parse (hl7_in) -> AR for what the interface does not take; AE when a required field is
  missing or wrong -> find the patient by the PID-3 identifiers -> A04: register through
  patients.services.patient_register (duplicate check on: a likely duplicate without a matching
  identifier is refused with AE 205 naming the candidate MRN), or update when the identifiers are
  known already; A08: update through patient_update (AE 204 when no patient has the
  identifiers), and the PID-3 identifiers the patient lacks added through
  patients.services.patient_identifiers_add -> log an InboundHl7Message -> answer AA/AE/AR.
  The acting user is the service account `system-hl7` (no usable password, medical office
  administrator, every active location), so the patient audit rows name it.
  A resend of a message already accepted (same sender, control id and content) is answered AA
  again without being applied twice.

Outbound SIU (`outbound_queue_for_appointment`, called on scheduling.events.appointment_changed):
  one OutboundHl7Message per configured destination (file drop and/or MLLP), payload built at
  once so that it describes the appointment as it was at that change. Delivery
  (`outbound_send_pending`) keeps the order per destination: a message is sent only after every
  earlier one was delivered or gave up. MLLP waits for the ACK: AA (or CA) -> acked; AE/AR,
  no ACK or a broken connection -> retried with doubling back-off up to
  PATIENTDESK_HL7_MAX_ATTEMPTS, then failed (listed on the interface screen, with a retry
  button). A row is claimed by moving its next_attempt_at forward with a compare-and-set
  update, so two workers never send the same message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hl7
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import Action, Category, Outcome
from audit.services import record
from core.capabilities import Capability
from core.models import Location
from interop import conf
from interop.hl7_codec import decode, normalise, split_messages
from interop.hl7_in import (
    Header,
    Hl7Reject,
    ParsedAdt,
    Problem,
    build_ack,
    new_control_id,
    parse_adt,
)
from interop.hl7_out import build_siu, trigger_for
from interop.mllp import MllpClient, MllpError
from interop.models import (
    ACK_STATUS,
    OUTBOUND_TRANSITIONS,
    AckCode,
    FeedDetail,
    IcalFeedToken,
    InboundHl7Message,
    OutboundHl7Message,
    OutboundStatus,
    Transport,
    hash_feed_token,
)
from patients.models import Patient, PatientIdentifier
from patients.services import (
    DuplicateCandidatesFound,
    patient_identifiers_add,
    patient_register,
    patient_update,
)

if TYPE_CHECKING:
    from accounts.models import User
    from scheduling.models import Practitioner

logger = logging.getLogger(__name__)

SERVICE_USERNAME = "system-hl7"
SERVICE_ROLE = "medical_office_admin"
INTERFACES = "interfaces"  # audit category (audit.models.Category gains it with issue 3)
SCHEDULING = "scheduling"
MAX_BACKOFF_SECONDS = 3600
# Patient fields -> where they come from in PID, to name the field in an AE.
FIELD_SOURCES: dict[str, tuple[str, tuple[str | int, ...]]] = {
    "identifiers": ("PID-3 patient identifier list", ("PID", 1, 3)),
    "family_name": ("PID-5.1 family name", ("PID", 1, 5, 1, 1)),
    "given_name": ("PID-5.2 given name", ("PID", 1, 5, 1, 2)),
    "middle_name": ("PID-5.3 middle name", ("PID", 1, 5, 1, 3)),
    "suffix": ("PID-5.4 suffix", ("PID", 1, 5, 1, 4)),
    "birth_date": ("PID-7 date of birth", ("PID", 1, 7)),
    "sex_at_birth": ("PID-8 administrative sex", ("PID", 1, 8)),
    "address_line1": ("PID-11.1 street address", ("PID", 1, 11, 1, 1)),
    "address_line2": ("PID-11.2 other designation", ("PID", 1, 11, 1, 2)),
    "city": ("PID-11.3 city", ("PID", 1, 11, 1, 3)),
    "state": ("PID-11.4 state", ("PID", 1, 11, 1, 4)),
    "postal_code": ("PID-11.5 ZIP code", ("PID", 1, 11, 1, 5)),
    "phone_home": ("PID-13 home phone", ("PID", 1, 13)),
    "phone_mobile": ("PID-13 mobile phone", ("PID", 1, 13)),
    "email": ("PID-13.4 e-mail", ("PID", 1, 13)),
    "preferred_language": ("PID-15 primary language", ("PID", 1, 15)),
    "home_location": ("MSH-6 receiving facility", ("MSH", 1, 6)),
}


# --- the service account and the receiving location ------------------------------------------


def service_account() -> User:
    """`system-hl7`: created on first use with no usable password (it cannot sign in), medical
    office administrator at every active location."""
    from accounts.models import Role, User
    from accounts.services import user_set_locations

    with transaction.atomic():
        user, created = User.objects.get_or_create(
            username=SERVICE_USERNAME, defaults={"first_name": "HL7", "last_name": "interface"}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.roles.set(Role.objects.filter(slug=SERVICE_ROLE))
            record(
                actor=None,
                username="hl7-interface",
                action=Action.CREATE,
                event="user.create",
                category=Category.ADMINISTRATION,
                obj=user,
                reason=f"service account for the HL7 interface; role {SERVICE_ROLE}",
            )
        active = list(Location.objects.filter(is_active=True))
        if set(user.locations.values_list("pk", flat=True)) != {loc.pk for loc in active}:
            user_set_locations(actor=user, user=user, locations=active)
    for attr in ("capability_set", "location_ids", "role_slugs", "role_names", "requires_2fa"):
        user.__dict__.pop(attr, None)
    return user


def receiving_location(header: Header, default: Location | None) -> Location | None:
    """MSH-6 as a Location.code; else the default given (command option), else the
    PATIENTDESK_HL7_DEFAULT_LOCATION setting, else the first active location."""
    active = Location.objects.filter(is_active=True)
    if header.receiving_facility:
        found = active.filter(code__iexact=header.receiving_facility).first()
        if found is not None:
            return found
    if default is not None:
        return default
    code = conf.default_location_code()
    if code:
        return active.filter(code=code).first()
    return active.order_by("pk").first()


def location_by_code(code: str) -> Location:
    location = Location.objects.filter(is_active=True, code=code).first()
    if location is None:
        raise ValidationError(f"There is no active location with code '{code}'.")
    return location


# --- inbound ADT -------------------------------------------------------------------------------


@dataclass
class InboundResult:
    control_id: str
    code: str
    text: str
    ack: str
    problems: list[Problem] = field(default_factory=list)
    message: InboundHl7Message | None = None

    def as_json(self) -> dict[str, str]:
        return {"control_id": self.control_id, "code": self.code, "text": self.text}


class _Refusal(Exception):  # noqa: N818  (an AE answer, raised inside the apply step)
    def __init__(
        self,
        problems: list[Problem],
        *,
        ack_text: str = "",
        log_text: str = "",
        candidates: Iterable[Patient] = (),
    ) -> None:
        super().__init__(problems[0].text)
        self.problems = problems
        self.ack_text = ack_text or "; ".join(p.text for p in problems)
        self.log_text = log_text or self.ack_text
        self.candidates = list(candidates)  # likely duplicates: audited after the rollback


def _summary(problems: Iterable[Problem]) -> str:
    return "; ".join(p.text for p in problems)


def inbound_receive(
    text: str,
    *,
    transport: str,
    peer: str = "",
    default_location: Location | None = None,
) -> InboundResult:
    """Apply one inbound message and return the ACK to answer with. Never raises for bad
    input: every problem becomes an AE or AR naming the HL7 field."""
    normalised = normalise(text)
    digest = hashlib.sha256(normalised.encode("utf-8")).hexdigest()
    try:
        parsed = parse_adt(normalised)
    except Hl7Reject as reject:
        return _answer(
            header=reject.header,
            code=AckCode.AR,
            problems=[reject.problem],
            text=reject.problem.text,
            transport=transport,
            peer=peer,
            digest=digest,
        )
    header = parsed.header
    if _already_accepted(header, digest):
        note = "already accepted earlier (same control id and content); not applied again"
        return _answer(
            header=header,
            code=AckCode.AA,
            text=note,
            log_text=note,
            transport=transport,
            peer=peer,
            digest=digest,
        )
    if parsed.patient.errors:
        return _answer(
            header=header,
            code=AckCode.AE,
            problems=parsed.patient.problems,
            text=_summary(parsed.patient.errors),
            transport=transport,
            peer=peer,
            digest=digest,
        )
    location = receiving_location(header, default_location)
    try:
        actor = service_account()
        with transaction.atomic():
            patient, text_ok = _apply(parsed, actor=actor, location=location)
    except _Refusal as refusal:
        return _answer(
            header=header,
            code=AckCode.AE,
            problems=refusal.problems,
            text=refusal.ack_text,
            log_text=refusal.log_text,
            transport=transport,
            peer=peer,
            digest=digest,
            location=location,
            candidates=refusal.candidates,
        )
    except DatabaseError as exc:
        logger.error(
            "HL7 %s %s: database error %s",
            header.message_type,
            header.control_id,
            type(exc).__name__,
        )
        problem = Problem("the database could not apply the message now; resend it later", "206")
        return _answer(
            header=header,
            code=AckCode.AE,
            problems=[problem],
            text=problem.text,
            transport=transport,
            peer=peer,
            digest=digest,
            location=location,
        )
    warnings = parsed.patient.warnings
    if warnings:
        text_ok += f"; ignored: {_summary(warnings)}"
    return _answer(
        header=header,
        code=AckCode.AA,
        problems=warnings,
        text=text_ok,
        log_text=f"ignored: {_summary(warnings)}" if warnings else "",
        transport=transport,
        peer=peer,
        digest=digest,
        location=location,
        patient=patient,
    )


def _already_accepted(header: Header, digest: str) -> bool:
    return InboundHl7Message.objects.filter(
        sending_application=header.sending_application,
        sending_facility=header.sending_facility,
        control_id=header.control_id,
        payload_sha256=digest,
        ack_code=AckCode.AA,
    ).exists()


def _matching_patients(identifiers: list[tuple[str, str]]) -> list[Patient]:
    if not identifiers:
        return []
    query = Q()
    for system, value in identifiers:
        query |= Q(system=system, value=value)
    patient_ids = set(PatientIdentifier.objects.filter(query).values_list("patient_id", flat=True))
    found: dict[int, Patient] = {}
    for patient in Patient.objects.filter(pk__in=patient_ids).select_related("merged_into"):
        survivor = patient
        for _ in range(10):  # follow merges to the surviving record
            if survivor.merged_into_id is None:
                break
            survivor = Patient.objects.get(pk=survivor.merged_into_id)
        found[survivor.pk] = survivor
    return sorted(found.values(), key=lambda p: p.pk)


def _field_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    if hasattr(exc, "error_dict"):
        for name, messages in exc.message_dict.items():
            label, location = FIELD_SOURCES.get(name, (name.replace("_", " "), ("PID", 1)))
            problems.append(Problem(f"{label}: {' '.join(messages)}", "102", location))
    else:
        problems.append(Problem(" ".join(exc.messages), "207"))
    return problems


def _apply(parsed: ParsedAdt, *, actor: User, location: Location | None) -> tuple[Patient, str]:
    data = parsed.patient
    matches = _matching_patients(data.identifiers)
    if len(matches) > 1:
        mrns = ", ".join(p.mrn for p in matches)
        raise _Refusal(
            [Problem("PID-3 identifiers belong to different patients", "205", ("PID", 1, 3))],
            ack_text=f"PID-3 identifiers belong to different patients (MRN {mrns}); merge first",
            log_text="PID-3 identifiers belong to different patients; merge them first",
        )
    try:
        if matches:
            return _update(parsed, actor=actor, patient=matches[0])
        if not parsed.is_registration:
            raise _Refusal(
                [
                    Problem(
                        "no patient has the identifiers in PID-3; register with ADT^A04 first",
                        "204",
                        ("PID", 1, 3),
                    )
                ]
            )
        return _register(parsed, actor=actor, location=location)
    except ValidationError as exc:
        problems = _field_problems(exc)
        raise _Refusal(problems) from exc
    except PermissionDenied as exc:
        raise _Refusal([Problem(f"the interface account may not do this: {exc}", "207")]) from exc


def _register(parsed: ParsedAdt, *, actor: User, location: Location | None) -> tuple[Patient, str]:
    data = parsed.patient
    if any(system == PatientIdentifier.MRN_SYSTEM for system, _ in data.identifiers):
        raise _Refusal(
            [
                Problem(
                    f"PID-3 names an MRN ({conf.mrn_authority()}) that no patient has",
                    "204",
                    ("PID", 1, 3),
                )
            ]
        )
    if location is None:
        raise _Refusal([Problem("there is no active location to register the patient at", "207")])
    try:
        patient = patient_register(
            actor=actor,
            home_location=location,
            values=data.values,
            identifiers=data.identifiers,
            event="patient.hl7_register",
        )
    except DuplicateCandidatesFound as found:
        mrns = ", ".join(c.mrn for c in found.candidates[:3])
        raise _Refusal(
            [Problem("likely duplicate of an existing patient", "205", ("PID", 1, 3))],
            ack_text=(
                f"likely duplicate of MRN {mrns} (same date of birth and a similar name, or the "
                "same phone or e-mail) and no PID-3 identifier matches; add the identifier to "
                "that record or merge, then resend"
            ),
            log_text=(
                "likely duplicate of an existing patient and no PID-3 identifier matches "
                "(the candidates are in the audit trail)"
            ),
            candidates=found.candidates[:3],
        ) from found
    return patient, f"registered as MRN {patient.mrn}"


def _update(parsed: ParsedAdt, *, actor: User, patient: Patient) -> tuple[Patient, str]:
    """The changed fields through patient_update, and the PID-3 identifiers the patient does not
    have yet through patient_identifiers_add (none of them is another patient's: `_apply`
    found this patient as the only holder of every known one)."""
    changes = {
        name: value
        for name, value in parsed.patient.values.items()
        if getattr(patient, name) != value
    }
    held = set(patient.identifiers.values_list("system", "value"))
    new_identifiers = [key for key in parsed.patient.identifiers if key not in held]
    if any(system == PatientIdentifier.MRN_SYSTEM for system, _ in new_identifiers):
        # as for a registration: an MRN of ours that this patient does not have is an error
        raise _Refusal(
            [
                Problem(
                    f"PID-3 names an MRN ({conf.mrn_authority()}) that this patient does not have",
                    "204",
                    ("PID", 1, 3),
                )
            ]
        )
    if not changes and not new_identifiers:
        return patient, f"no changes for MRN {patient.mrn}"
    updated = patient
    if changes:
        updated = patient_update(
            actor=actor, patient=patient, values=changes, event="patient.hl7_update"
        )
    added = patient_identifiers_add(
        actor=actor,
        patient=updated,
        identifiers=new_identifiers,
        event="patient.hl7_identifiers_add",
    )
    parts = sorted(changes)
    if added:
        parts.append(f"{len(added)} identifier{'s' if len(added) > 1 else ''} added from PID-3")
    return updated, f"updated MRN {updated.mrn}: {', '.join(parts)}"


def _answer(
    *,
    header: Header | None,
    code: str,
    text: str,
    transport: str,
    peer: str,
    digest: str,
    problems: list[Problem] | None = None,
    log_text: str | None = None,
    location: Location | None = None,
    patient: Patient | None = None,
    candidates: Iterable[Patient] = (),
) -> InboundResult:
    """Log the message, audit it (and each duplicate candidate it was refused for), and build
    the ACK."""
    problems = problems or []
    header = header or Header()
    ack = build_ack(header=header, code=code, text=text, problems=problems)
    with transaction.atomic():
        row = InboundHl7Message.objects.create(
            transport=transport,
            peer=peer[:64],
            sending_application=header.sending_application,
            sending_facility=header.sending_facility,
            message_type=header.message_type[:20],
            control_id=header.control_id,
            version=header.version,
            status=ACK_STATUS[code],
            ack_code=code,
            error_text=log_text if log_text is not None else ("" if code == AckCode.AA else text),
            payload_sha256=digest,
            location=location,
            patient=patient,
        )
        record(
            actor=None,
            username=SERVICE_USERNAME,
            action=Action.CREATE if code == AckCode.AA else Action.EXECUTE,
            event="hl7.receive",
            category=INTERFACES,
            patient=patient,
            obj=row,
            outcome=Outcome.SUCCESS if code == AckCode.AA else Outcome.FAILURE,
            reason=f"{header.message_type or 'HL7'} via {transport}: {code}",
        )
        for candidate in candidates:
            record(
                actor=None,
                username=SERVICE_USERNAME,
                action=Action.QUERY,
                event="hl7.duplicate_candidate",
                category=Category.DEMOGRAPHICS,
                patient=candidate,
                obj=row,
                outcome=Outcome.DENIED,
                reason=f"{header.message_type} refused as a likely duplicate of this patient",
            )
    return InboundResult(
        control_id=header.control_id, code=code, text=text, ack=ack, problems=problems, message=row
    )


@dataclass
class ImportReport:
    results: list[InboundResult] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    files_read: int = 0

    @property
    def accepted(self) -> int:
        return sum(1 for r in self.results if r.code == AckCode.AA)

    def as_json(self) -> dict[str, Any]:
        return {
            "messages": len(self.results),
            "accepted": self.accepted,
            "rejected": len(self.results) - self.accepted,
            "acks": [r.as_json() for r in self.results],
        }


def inbound_import_file(
    path: Path, *, default_location: Location | None, report: ImportReport
) -> list[InboundResult] | None:
    """Every message in one file (any line ends, optional BOM), each applied and answered;
    None when the file cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        report.unreadable.append((str(path), exc.strerror or type(exc).__name__))
        return None
    report.files_read += 1
    results = [
        inbound_receive(message, transport=Transport.FILE, default_location=default_location)
        for message in split_messages(decode(raw))
    ]
    report.results.extend(results)
    return results


# --- outbound SIU ------------------------------------------------------------------------------


def _destinations() -> list[tuple[str, str]]:
    found = []
    if conf.out_dir():
        found.append((Transport.FILE.value, conf.out_dir()))
    if conf.out_host() and conf.out_port():
        found.append((Transport.MLLP.value, f"{conf.out_host()}:{conf.out_port()}"))
    return found


def _enqueue_delivery(run_after: dt.datetime | None = None) -> None:
    from interop.tasks import enqueue_delivery

    enqueue_delivery(run_after=run_after)


def outbound_queue_for_appointment(
    *, appointment_id: int, change: str, actor_id: int | None = None, via: str = "ui"
) -> list[OutboundHl7Message]:
    """Queue the SIU message for an appointment change to every configured destination.

    Status-only changes (confirmed, arrived...) have no SIU trigger here; a change that came
    in over HL7 (`via="hl7"`) is not echoed back."""
    from accounts.models import User
    from scheduling.models import Appointment

    trigger = trigger_for(change)
    destinations = _destinations()
    if trigger is None or via == "hl7" or not destinations:
        return []
    appointment = (
        Appointment.objects.select_related("patient", "appointment_type", "location", "room")
        .filter(pk=appointment_id)
        .first()
    )
    if appointment is None:
        return []
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    now = timezone.now()
    rows = []
    with transaction.atomic():
        for transport, destination in destinations:
            control_id = new_control_id("PD")
            row = OutboundHl7Message.objects.create(
                transport=transport,
                destination=destination[:300],
                control_id=control_id,
                message_type=f"SIU^{trigger}",
                change=change,
                appointment=appointment,
                location=appointment.location,
                payload=build_siu(
                    appointment=appointment,
                    change=change,
                    control_id=control_id,
                    actor=actor,
                    via=via,
                    now=now,
                ),
                next_attempt_at=now,
            )
            record(
                actor=None,
                username=SERVICE_USERNAME,
                action=Action.EXPORT,
                event="hl7.siu_queue",
                category=INTERFACES,
                patient=appointment.patient,
                obj=row,
                reason=f"SIU^{trigger} to {transport}",
            )
            rows.append(row)
        transaction.on_commit(_enqueue_delivery)
    return rows


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    def as_json(self) -> dict[str, int]:
        return {"delivered": self.delivered, "retrying": self.retrying, "failed": self.failed}


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(
        seconds=min(conf.retry_seconds() * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
    )


def _claim_head(transport: str, now: dt.datetime) -> OutboundHl7Message | None:
    """The oldest queued message of this destination when it is due, leased to this worker."""
    head = (
        OutboundHl7Message.objects.filter(transport=transport, status=OutboundStatus.QUEUED)
        .order_by("id")
        .first()
    )
    if head is None or (head.next_attempt_at is not None and head.next_attempt_at > now):
        return None
    lease = now + dt.timedelta(seconds=2 * conf.ack_timeout() + 30)
    claimed = OutboundHl7Message.objects.filter(
        pk=head.pk, status=OutboundStatus.QUEUED, next_attempt_at=head.next_attempt_at
    ).update(next_attempt_at=lease)
    return head if claimed else None


def outbound_send_pending(*, now: dt.datetime | None = None, limit: int = 1000) -> DeliveryReport:
    """Deliver what is due, in order per destination; stop a destination at its first failure."""
    report = DeliveryReport()
    for transport in (Transport.FILE, Transport.MLLP):
        client: MllpClient | None = None
        try:
            for _ in range(limit):
                message = _claim_head(transport, now or timezone.now())
                if message is None:
                    break
                if transport == Transport.MLLP and client is None and conf.out_host():
                    client = MllpClient(
                        conf.out_host(), conf.out_port(), timeout=conf.ack_timeout()
                    )
                outcome = _deliver(message, client)
                _record_attempt(message, outcome, report)
                if outcome.status == OutboundStatus.QUEUED:
                    break
        finally:
            if client is not None:
                client.close()
    return report


@dataclass
class _Outcome:
    status: str
    ack_code: str = ""
    ack_text: str = ""
    error: str = ""


def _deliver(message: OutboundHl7Message, client: MllpClient | None) -> _Outcome:
    if message.transport == Transport.FILE:
        return _write_file(message)
    if client is None:
        return _Outcome(OutboundStatus.FAILED, error="no MLLP destination is configured now")
    try:
        reply = client.send(message.payload)
    except MllpError as exc:
        return _Outcome(OutboundStatus.QUEUED, error=str(exc))
    return _read_ack(message, reply)


def _read_ack(message: OutboundHl7Message, reply: str) -> _Outcome:
    try:
        ack = hl7.parse(normalise(reply))
        code = str(ack["MSA.F1"] or "").upper()
        answered = str(ack["MSA.F2"] or "")
        text = str(ack["MSA.F3"] or "")
    except Exception:  # python-hl7 raises several types on text that is not HL7
        return _Outcome(OutboundStatus.QUEUED, error="the reply is not an HL7 ACK")
    if answered != message.control_id:
        return _Outcome(
            OutboundStatus.QUEUED, code, text, error="the ACK answers another message (MSA-2)"
        )
    if code in ("AA", "CA"):
        return _Outcome(OutboundStatus.ACKED, code, text)
    return _Outcome(OutboundStatus.QUEUED, code, text, error=f"the receiver answered {code}")


def _write_file(message: OutboundHl7Message) -> _Outcome:
    directory = conf.out_dir()
    if not directory:
        return _Outcome(OutboundStatus.FAILED, error="no file drop directory is configured now")
    # Names sort in queue order (receivers commonly read a drop folder by name).
    stamp = message.created_at.strftime("%Y%m%d%H%M%S")
    kind = message.message_type.replace("^", "_")
    name = f"{stamp}_{message.pk:010d}_{message.control_id}_{kind}.hl7"
    try:
        os.makedirs(directory, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".hl7", dir=directory)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write((message.payload + "\r").encode("utf-8"))
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o640)
            os.replace(temporary, os.path.join(directory, name))  # atomic on one filesystem
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
    except OSError as exc:
        return _Outcome(OutboundStatus.QUEUED, error=f"cannot write the file ({exc.strerror})")
    return _Outcome(OutboundStatus.SENT)


def _set_status(message: OutboundHl7Message, status: str) -> None:
    if status not in OUTBOUND_TRANSITIONS[message.status]:
        raise ValidationError(f"An HL7 message cannot go from {message.status} to {status}.")
    message.status = status


def _record_attempt(message: OutboundHl7Message, outcome: _Outcome, report: DeliveryReport) -> None:
    now = timezone.now()
    with transaction.atomic():
        message.attempts += 1
        message.last_attempt_at = now
        message.last_ack_code = outcome.ack_code[:2]
        message.last_ack_text = " ".join(outcome.ack_text.split())[:200]
        message.last_error = outcome.error[:200]
        status = outcome.status
        if status == OutboundStatus.QUEUED and message.attempts >= conf.max_attempts():
            status = OutboundStatus.FAILED
        _set_status(message, status)
        if status == OutboundStatus.QUEUED:
            message.next_attempt_at = now + _backoff(message.attempts)
            report.retrying += 1
            transaction.on_commit(lambda: _enqueue_delivery(run_after=message.next_attempt_at))
        else:
            message.next_attempt_at = None
            if status in (OutboundStatus.SENT, OutboundStatus.ACKED):
                message.delivered_at = now
                report.delivered += 1
            else:
                report.failed += 1
        message.save()
        if status != OutboundStatus.QUEUED:
            record(
                actor=None,
                username=SERVICE_USERNAME,
                action=Action.EXPORT,
                event="hl7.siu_delivered" if status != OutboundStatus.FAILED else "hl7.siu_failed",
                category=INTERFACES,
                obj=message,
                outcome=Outcome.SUCCESS if status != OutboundStatus.FAILED else Outcome.FAILURE,
                reason=f"{message.message_type} {status} after {message.attempts} attempt(s)",
            )


@transaction.atomic
def outbound_retry(*, actor: User, message: OutboundHl7Message) -> OutboundHl7Message:
    """Send a failed (or waiting) message again now, with a fresh set of attempts."""
    if not actor.can(Capability.MANAGE_INTERFACES):
        raise PermissionDenied("Retrying HL7 messages needs the manage_interfaces capability.")
    locked = OutboundHl7Message.objects.select_for_update().get(pk=message.pk)
    if not locked.can_retry or not locked.payload:
        raise ValidationError(
            "Only a failed or waiting message whose content is still kept can be sent again."
        )
    before = locked.attempts
    _set_status(locked, OutboundStatus.QUEUED)
    locked.attempts = 0
    locked.next_attempt_at = timezone.now()
    locked.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    record(
        actor=actor,
        action=Action.UPDATE,
        event="hl7.siu_retry",
        category=INTERFACES,
        obj=locked,
        reason=f"{locked.message_type} retried after {before} attempt(s)",
    )
    transaction.on_commit(_enqueue_delivery)
    return locked


def outbound_purge_payloads(*, now: dt.datetime | None = None) -> int:
    """Blank the payload (PHI) of messages delivered or failed longer ago than the retention."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=conf.payload_retention_days())
    return (
        OutboundHl7Message.objects.filter(
            status__in=(OutboundStatus.SENT, OutboundStatus.ACKED, OutboundStatus.FAILED),
            updated_at__lt=cutoff,
        )
        .exclude(payload="")
        .update(payload="")
    )


# --- calendar feed tokens ----------------------------------------------------------------------


def can_manage_feeds(user: User) -> bool:
    return user.can(Capability.MANAGE_INTERFACES) or user.can(Capability.MANAGE_SCHEDULES)


def _require_feed_manager(actor: User, practitioner: Practitioner) -> None:
    if not can_manage_feeds(actor):
        raise PermissionDenied(
            "Calendar feeds need the manage_interfaces or manage_schedules capability."
        )
    locations = set(practitioner.locations.values_list("pk", flat=True))
    if not locations & set(actor.location_ids):
        raise PermissionDenied("This practitioner does not work at your locations.")


@transaction.atomic
def ical_token_create(
    *, actor: User, practitioner: Practitioner, detail: str = FeedDetail.INITIALS
) -> tuple[IcalFeedToken, str]:
    """A new secret feed URL token for `practitioner`; the raw token is returned once."""
    _require_feed_manager(actor, practitioner)
    if detail not in FeedDetail.values:
        raise ValidationError({"detail": "Choose what the calendar entries show."})
    if not practitioner.is_active:
        raise ValidationError({"practitioner": "This practitioner is no longer active."})
    raw = IcalFeedToken.generate()
    token = IcalFeedToken.objects.create(
        practitioner=practitioner,
        token_hash=hash_feed_token(raw),
        hint=raw[:6],
        detail=detail,
        created_by=actor,
    )
    record(
        actor=actor,
        action=Action.CREATE,
        event="ical.token_create",
        category=Category.SECURITY,
        obj=token,
        reason=f"calendar feed for practitioner {practitioner.public_id}; shows {detail}",
    )
    return token, raw


@transaction.atomic
def ical_token_revoke(*, actor: User, token: IcalFeedToken) -> IcalFeedToken:
    _require_feed_manager(actor, token.practitioner)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.revoked_by = actor
        token.save(update_fields=["revoked_at", "revoked_by", "updated_at"])
        record(
            actor=actor,
            action=Action.UPDATE,
            event="ical.token_revoke",
            category=Category.SECURITY,
            obj=token,
        )
    return token
