"""Reading inbound HL7 v2 ADT^A04 (register) and ADT^A08 (update) messages, and writing ACKs.

Pure functions (no database): `parse_adt` turns one message into what the patient services need
(identifiers, field values, the fields sent as HL7 null "" to clear) plus a list of problems;
`build_ack` writes the acknowledgement. python-hl7 does the parsing (after line ends are
normalised, see hl7_codec); the required fields are checked here, with messages that name the
HL7 field and never repeat its value (the text goes to logs and to the interface screen).

Problems with a required field (identifier, name, date of birth, sex) reject the message (AE).
Problems with an optional field (a malformed phone, a foreign address) drop that field, and the
ACK is still AA, with a warning ERR segment naming what was ignored.

Never stored, on purpose: social security and driver's licence numbers (PID-3 of type SS/DL,
PID-19, PID-20), race, religion and the rest of PID: registration needs no more (minimum
necessary).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import hl7
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils import timezone

from interop import conf
from interop.hl7_codec import components, escape, normalise, parse_date, segment, timestamp
from patients.models import US_STATES, PatientIdentifier
from patients.validators import normalize_phone, validate_birth_date, validate_postal_code

SUPPORTED_VERSIONS = (
    "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2", "2.9",
)  # fmt: skip
SUPPORTED_EVENTS = {"A04": "register", "A08": "update"}
HL7_NULL = '""'
NEVER_STORED_ID_TYPES = frozenset({"SS", "SSN", "DL", "DLN", "PPN", "TAX"})
SEX_CODES = {"F": "F", "M": "M", "U": "U", "O": "U", "A": "U", "N": "U", "X": "U"}
US_STATE_CODES = frozenset(code for code, _ in US_STATES)
US_COUNTRIES = frozenset({"", "US", "USA", "840", "UNITED STATES"})
ERROR_LABELS = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}
# ISO 639-1/639-2/639-3 codes (HL7 table 0296) -> the language names the registration form uses.
LANGUAGES = {
    "en": "English", "eng": "English", "es": "Spanish", "spa": "Spanish",
    "zh": "Chinese", "zho": "Chinese", "chi": "Chinese", "cmn": "Chinese (Mandarin)",
    "yue": "Chinese (Cantonese)", "tl": "Tagalog", "tgl": "Tagalog", "fil": "Tagalog",
    "vi": "Vietnamese", "vie": "Vietnamese", "ar": "Arabic", "ara": "Arabic",
    "fr": "French", "fra": "French", "fre": "French", "ko": "Korean", "kor": "Korean",
    "ru": "Russian", "rus": "Russian", "ht": "Haitian Creole", "hat": "Haitian Creole",
    "pt": "Portuguese", "por": "Portuguese", "pl": "Polish", "pol": "Polish",
    "ase": "American Sign Language", "sgn": "American Sign Language",
    "de": "German", "deu": "German", "ger": "German", "it": "Italian", "ita": "Italian",
    "ja": "Japanese", "jpn": "Japanese", "hi": "Hindi", "hin": "Hindi", "ur": "Urdu",
    "urd": "Urdu", "bn": "Bengali", "ben": "Bengali", "pa": "Punjabi", "pan": "Punjabi",
    "fa": "Persian", "fas": "Persian", "per": "Persian", "gu": "Gujarati", "guj": "Gujarati",
    "he": "Hebrew", "heb": "Hebrew", "yi": "Yiddish", "yid": "Yiddish", "el": "Greek",
    "ell": "Greek", "gre": "Greek", "uk": "Ukrainian", "ukr": "Ukrainian", "so": "Somali",
    "som": "Somali", "am": "Amharic", "amh": "Amharic", "hmn": "Hmong", "km": "Khmer",
    "khm": "Khmer", "lo": "Lao", "lao": "Lao", "ne": "Nepali", "nep": "Nepali", "th": "Thai",
    "tha": "Thai", "tr": "Turkish", "tur": "Turkish", "sw": "Swahili", "swa": "Swahili",
    "ro": "Romanian", "ron": "Romanian", "rum": "Romanian", "nl": "Dutch", "nld": "Dutch",
    "dut": "Dutch", "hy": "Armenian", "hye": "Armenian", "arm": "Armenian",
}  # fmt: skip
NAME_LIMITS = {"family_name": 80, "given_name": 80, "middle_name": 80, "suffix": 10}
ADDRESS_LIMITS = {"address_line1": 120, "address_line2": 120, "city": 80}
ADDRESS_FIELDS = ("address_line1", "address_line2", "city", "state", "postal_code")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a message. `text` names the field, never its value."""

    text: str
    code: str = "207"
    location: tuple[str | int, ...] = ()  # segment, sequence, field, repetition, component
    severity: str = "E"  # E error, W warning (the field was ignored), I information

    @property
    def is_error(self) -> bool:
        return self.severity == "E"


class Hl7Reject(Exception):  # noqa: N818  (it is the AR answer, not a crash)
    """The message as a whole cannot be taken: malformed, unsupported type, event or version."""

    def __init__(self, problem: Problem, header: Header | None = None) -> None:
        super().__init__(problem.text)
        self.problem = problem
        self.header = header


@dataclass(frozen=True)
class Header:
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    control_id: str = ""
    message_code: str = ""
    trigger_event: str = ""
    processing_id: str = ""
    version: str = ""

    @property
    def message_type(self) -> str:
        return "^".join(p for p in (self.message_code, self.trigger_event) if p)


@dataclass
class AdtPatient:
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]


@dataclass
class ParsedAdt:
    header: Header
    event: str
    patient: AdtPatient

    @property
    def is_registration(self) -> bool:
        return self.event == "A04"


# --- reading ----------------------------------------------------------------------------------


class _Reader:
    """Safe access to a python-hl7 message: missing segments, fields or components read as ''."""

    def __init__(self, message: hl7.Message) -> None:
        self.message = message

    def has(self, name: str) -> bool:
        try:
            self.message.segment(name)
        except KeyError:
            return False
        return True

    def raw(self, name: str, number: int) -> str:
        """A field's text as sent (escapes and delimiters kept), '' when absent."""
        try:
            seg = self.message.segment(name)
        except KeyError:
            return ""
        return str(seg[number]) if 0 < number < len(seg) else ""

    def repetitions(self, name: str, number: int) -> int:
        raw = self.raw(name, number)
        return len(raw.split(self.message.separators[2])) if raw else 0

    def get(self, name: str, number: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
        try:
            value = self.message[f"{name}.F{number}.R{rep}.C{comp}.S{sub}"]
        except (IndexError, KeyError, ValueError):
            return ""
        return str(value or "").strip()


def _first_line_field(text: str, number: int) -> str:
    """MSH-n read straight from the first line, for an ACK to a message python-hl7 refused."""
    line = text.split("\r", 1)[0]
    if not line.startswith("MSH") or len(line) < 4:
        return ""
    parts = line.split(line[3])
    index = number - 1
    return parts[index].split("^")[0][:199] if 0 < index < len(parts) else ""


def read_header(text: str) -> tuple[Header, _Reader]:
    """Parse the message and read MSH. Raises Hl7Reject (AR) when it cannot be read."""
    text = normalise(text)
    salvaged = Header(
        sending_application=_first_line_field(text, 3),
        sending_facility=_first_line_field(text, 4),
        control_id=_first_line_field(text, 10),
    )
    if not text.startswith("MSH") or len(text) < 8:
        raise Hl7Reject(
            Problem("the message does not start with an MSH segment", "100", ("MSH",)), salvaged
        )
    if sum(1 for seg in text.split("\r") if seg.startswith("MSH")) > 1:
        raise Hl7Reject(
            Problem("several messages arrived as one; send one message per MLLP frame", "100"),
            salvaged,
        )
    try:
        reader = _Reader(hl7.parse(text))
    except Exception as exc:  # python-hl7 raises several types for malformed text
        raise Hl7Reject(
            Problem(f"the message cannot be parsed ({type(exc).__name__})", "102", ("MSH",)),
            salvaged,
        ) from exc
    header = Header(
        sending_application=reader.get("MSH", 3)[:100],
        sending_facility=reader.get("MSH", 4)[:100],
        receiving_application=reader.get("MSH", 5)[:100],
        receiving_facility=reader.get("MSH", 6)[:100],
        control_id=reader.get("MSH", 10)[:199],
        message_code=reader.get("MSH", 9, 1, 1).upper()[:3],
        trigger_event=(reader.get("MSH", 9, 1, 2) or reader.get("EVN", 1)).upper()[:3],
        processing_id=reader.get("MSH", 11).upper()[:1],
        version=reader.get("MSH", 12)[:10],
    )
    return header, reader


def check_supported(header: Header) -> None:
    """AR for what this interface does not take: only ADT^A04/A08, versions 2.3 to 2.9."""
    if not header.control_id:
        raise Hl7Reject(
            Problem("MSH-10 message control id is required", "101", ("MSH", 1, 10)), header
        )
    if not header.version:
        raise Hl7Reject(Problem("MSH-12 version id is required", "101", ("MSH", 1, 12)), header)
    if header.version not in SUPPORTED_VERSIONS:
        raise Hl7Reject(
            Problem(
                f"MSH-12 version {header.version} is not supported "
                f"(this interface takes {SUPPORTED_VERSIONS[0]} to {SUPPORTED_VERSIONS[-1]})",
                "203",
                ("MSH", 1, 12),
            ),
            header,
        )
    if not header.message_code:
        raise Hl7Reject(Problem("MSH-9 message type is required", "101", ("MSH", 1, 9)), header)
    if header.message_code != "ADT":
        raise Hl7Reject(
            Problem(
                f"MSH-9 message type {header.message_code} is not supported "
                "(this interface takes ADT^A04 and ADT^A08)",
                "200",
                ("MSH", 1, 9, 1, 1),
            ),
            header,
        )
    if header.trigger_event not in SUPPORTED_EVENTS:
        raise Hl7Reject(
            Problem(
                f"MSH-9 event {header.trigger_event or '(none)'} is not supported "
                "(this interface takes ADT^A04 and ADT^A08)",
                "201",
                ("MSH", 1, 9, 1, 2),
            ),
            header,
        )


def parse_adt(text: str) -> ParsedAdt:
    """Read one ADT^A04/A08 message. Raises Hl7Reject for what must be answered AR; field
    problems are returned in `patient.problems` (errors -> AE, warnings -> AA)."""
    header, reader = read_header(text)
    check_supported(header)
    event = header.trigger_event
    patient = AdtPatient()
    if not reader.has("PID"):
        patient.problems.append(
            Problem(
                f"the PID segment is missing: ADT^{event} needs the patient identification",
                "100",
                ("PID",),
            )
        )
        return ParsedAdt(header, event, patient)
    _PidMapper(reader, header, patient, registering=event == "A04").run()
    return ParsedAdt(header, event, patient)


class _PidMapper:
    """PID -> identifiers and Patient field values (see the module docstring)."""

    def __init__(
        self, reader: _Reader, header: Header, patient: AdtPatient, *, registering: bool
    ) -> None:
        self.r = reader
        self.header = header
        self.patient = patient
        self.registering = registering

    def run(self) -> None:
        self.identifiers()
        self.name()
        self.birth_date()
        self.sex()
        self.address()
        self.phones()
        self.language()

    def error(self, text: str, code: str, *location: str | int) -> None:
        self.patient.problems.append(Problem(text, code, ("PID", 1, *location)))

    def warn(self, text: str, *location: str | int) -> None:
        self.patient.problems.append(Problem(text, "102", ("PID", 1, *location), severity="W"))

    def is_null(self, number: int) -> bool:
        return self.r.raw("PID", number) == HL7_NULL

    # PID-3

    def identifiers(self) -> None:
        found: list[tuple[str, str]] = []
        for rep in range(1, self.r.repetitions("PID", 3) + 1):
            value = self.r.get("PID", 3, rep, 1)
            id_type = self.r.get("PID", 3, rep, 5).upper()
            if not value or value == HL7_NULL or id_type in NEVER_STORED_ID_TYPES:
                continue
            system = self._system(rep)
            if system is None:
                continue
            if len(value) > 120:
                self.warn(f"PID-3 repetition {rep} is longer than 120 characters", 3, rep)
                continue
            if (system, value) not in found:
                found.append((system, value))
        if not found:
            self.error(
                "PID-3 needs at least one patient identifier with its assigning authority "
                "(CX.1 and CX.4)",
                "101",
                3,
            )
        self.patient.identifiers = found

    def _system(self, rep: int) -> str | None:
        namespace = self.r.get("PID", 3, rep, 4, 1)
        universal = self.r.get("PID", 3, rep, 4, 2)
        universal_type = self.r.get("PID", 3, rep, 4, 3).upper()
        if not (namespace or universal):
            namespace = self.header.sending_facility or self.header.sending_application
        if not (namespace or universal):
            return None
        if namespace and namespace.casefold() == conf.mrn_authority().casefold():
            return PatientIdentifier.MRN_SYSTEM
        if universal and universal_type == "ISO":
            return f"urn:oid:{universal}"[:200]
        return f"urn:patientdesk:hl7:{namespace or universal}"[:200]

    # PID-5

    def name(self) -> None:
        reps = self.r.repetitions("PID", 5)
        names = [
            {
                "family_name": self.r.get("PID", 5, rep, 1, 1),
                "given_name": self.r.get("PID", 5, rep, 2),
                "middle_name": self.r.get("PID", 5, rep, 3),
                "suffix": self.r.get("PID", 5, rep, 4),
                "type": self.r.get("PID", 5, rep, 7).upper(),
            }
            for rep in range(1, reps + 1)
        ]
        complete = [n for n in names if n["family_name"] and n["given_name"]]
        legal = [n for n in complete if n["type"] == "L"]
        chosen = (legal or complete or names or [{}])[0]
        if not chosen.get("family_name") or chosen["family_name"] == HL7_NULL:
            if self.registering or self.is_null(5) or reps:
                self.error("PID-5.1 family name is required", "101", 5, 1, 1)
            return
        if not chosen.get("given_name") or chosen["given_name"] == HL7_NULL:
            self.error("PID-5.2 given name is required", "101", 5, 1, 2)
            return
        for name, limit in NAME_LIMITS.items():
            value = chosen.get(name, "")
            if value == HL7_NULL:
                value = ""
            if len(value) > limit:
                label = name.replace("_", " ")
                component = list(NAME_LIMITS).index(name) + 1
                if name in ("family_name", "given_name"):
                    self.error(
                        f"PID-5.{component} {label} is longer than {limit} characters",
                        "102",
                        5,
                        1,
                        component,
                    )
                    continue
                self.warn(
                    f"PID-5.{component} {label} is longer than {limit} characters",
                    5,
                    1,
                    component,
                )
                value = ""
            self.patient.values[name] = value

    # PID-7

    def birth_date(self) -> None:
        raw = self.r.get("PID", 7)
        if not raw or raw == HL7_NULL:
            if self.registering or raw == HL7_NULL:
                self.error("PID-7 date of birth is required", "101", 7)
            return
        born = parse_date(raw)
        if born is None:
            self.error("PID-7 date of birth is not a valid date (YYYYMMDD)", "102", 7)
            return
        try:
            validate_birth_date(born)
        except ValidationError as exc:
            self.error(f"PID-7 {' '.join(exc.messages)}", "102", 7)
            return
        self.patient.values["birth_date"] = born

    # PID-8

    def sex(self) -> None:
        raw = self.r.get("PID", 8).upper()
        if not raw or raw == HL7_NULL:
            if self.registering or raw == HL7_NULL:
                self.error("PID-8 administrative sex is required", "101", 8)
            return
        if raw not in SEX_CODES:
            self.error(
                "PID-8 administrative sex is not a code of HL7 table 0001 (F, M, O, U, A, N or X)",
                "103",
                8,
            )
            return
        self.patient.values["sex_at_birth"] = SEX_CODES[raw]

    # PID-11

    def address(self) -> None:
        if self.is_null(11):
            self.patient.values.update(dict.fromkeys(ADDRESS_FIELDS, ""))
            return
        reps = self.r.repetitions("PID", 11)
        if not reps:
            return
        types = [self.r.get("PID", 11, rep, 7).upper() for rep in range(1, reps + 1)]
        rep = next((i + 1 for i, kind in enumerate(types) if kind == "H"), 1)
        country = self.r.get("PID", 11, rep, 6).upper()
        if country not in US_COUNTRIES:
            self.warn("PID-11 address is outside the United States", 11, rep)
            return
        street = [self.r.get("PID", 11, rep, 1, sub) for sub in (1, 2, 3)]
        line1 = street[0]
        for part in street[1:]:
            if part and part not in line1:
                line1 = f"{line1} {part}".strip()
        address = {
            "address_line1": line1,
            "address_line2": self.r.get("PID", 11, rep, 2),
            "city": self.r.get("PID", 11, rep, 3),
        }
        for name, limit in ADDRESS_LIMITS.items():
            if len(address[name]) > limit:
                component = ("address_line1", "address_line2", "city").index(name) + 1
                self.warn(
                    f"PID-11.{component} is longer than {limit} characters",
                    11,
                    rep,
                    component,
                )
                address[name] = ""
        state = self.r.get("PID", 11, rep, 4).upper()
        if state and state not in US_STATE_CODES:
            self.warn("PID-11.4 state is not a US state or territory code", 11, rep, 4)
            state = ""
        postal = self._postal_code(self.r.get("PID", 11, rep, 5), rep)
        address.update(state=state, postal_code=postal)
        if any(address.values()):
            self.patient.values.update(address)

    def _postal_code(self, raw: str, rep: int) -> str:
        digits = raw.replace(" ", "")
        if len(digits) == 9 and digits.isdigit():
            digits = f"{digits[:5]}-{digits[5:]}"
        try:
            validate_postal_code(digits)
        except ValidationError:
            self.warn("PID-11.5 ZIP code is not 12345 or 12345-6789", 11, rep, 5)
            return ""
        return digits

    # PID-13 / PID-14

    def phones(self) -> None:
        found: dict[str, str] = {}
        for number in (13, 14):
            if number == 13 and self.is_null(13):
                found.update(phone_home="", phone_mobile="", email="")
                continue
            for rep in range(1, self.r.repetitions("PID", number) + 1):
                self._telecom(number, rep, found)
        self.patient.values.update(found)

    def _telecom(self, number: int, rep: int, found: dict[str, str]) -> None:
        use = self.r.get("PID", number, rep, 2).upper()
        equipment = self.r.get("PID", number, rep, 3).upper()
        email = self.r.get("PID", number, rep, 4)
        if equipment in ("INTERNET", "X.400") or use == "NET":
            if email and "email" not in found:
                try:
                    EmailValidator()(email)
                except ValidationError:
                    self.warn(f"PID-{number}.4 e-mail address is not valid", number, rep)
                else:
                    found["email"] = email.lower()
            return
        if equipment in ("FX", "BP", "MD", "TDD", "TTY"):
            return
        target = "phone_mobile" if equipment == "CP" else "phone_home"
        if number == 14 and target != "phone_mobile":
            return  # a work number: the patient record has no field for it
        raw = self._phone_text(number, rep)
        if not raw or target in found:
            return
        try:
            found[target] = normalize_phone(raw)
        except ValidationError:
            self.warn(f"PID-{number} repetition {rep} is not a valid phone number", number, rep)

    def _phone_text(self, number: int, rep: int) -> str:
        country, area, local = (self.r.get("PID", number, rep, c) for c in (5, 6, 7))
        if area or local:
            return f"+{country or '1'} {area} {local}"
        return self.r.get("PID", number, rep, 12) or self.r.get("PID", number, rep, 1)

    # PID-15

    def language(self) -> None:
        if self.is_null(15):
            self.patient.values["preferred_language"] = "English"
            return
        code = self.r.get("PID", 15, 1, 1)
        text = self.r.get("PID", 15, 1, 2)
        if not (code or text):
            return
        name = LANGUAGES.get(code.lower().split("-")[0]) if code else None
        name = name or (text if text and len(text) <= 40 else None)
        if name is None:
            self.warn("PID-15 primary language is not a code of ISO 639", 15)
            return
        self.patient.values["preferred_language"] = name


# --- the acknowledgement ----------------------------------------------------------------------


def _version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (2, 5, 1)


def new_control_id(prefix: str = "") -> str:
    """A unique MSH-10 (at most 20 characters, as v2.5.1 allows)."""
    return (prefix + timezone.now().strftime("%y%m%d") + secrets.token_hex(7))[:20]


def _err_segment(problem: Problem, version: str) -> str:
    location = "^".join(str(part) for part in problem.location)
    label = ERROR_LABELS.get(problem.code, "Application internal error")
    if _version_tuple(version) < (2, 5):
        # ERR-1 ELD: segment^sequence^field^code&text&HL70357
        parts = [*(str(p) for p in problem.location[:3])]
        parts += [""] * (3 - len(parts))
        code = f"{problem.code}&{label}&HL70357"
        return segment("ERR", {1: "^".join([*parts, code])})
    return segment(
        "ERR",
        {
            2: location,
            3: components(problem.code, label, "HL70357"),
            4: problem.severity,
            8: escape(problem.text + ("; ignored" if problem.severity == "W" else "")),
        },
    )


def build_ack(
    *,
    header: Header | None,
    code: str,
    text: str,
    problems: Sequence[Problem] = (),
    now: dt.datetime | None = None,
) -> str:
    """ACK in original mode: MSA-1 AA/AE/AR, MSA-2 echoing MSH-10, MSA-3 the text, one ERR per
    problem (ERR-2/3/4/8 from v2.5, ERR-1 before). Answers in the sender's version when we
    support it, else 2.5.1."""
    header = header or Header()
    version = header.version if header.version in SUPPORTED_VERSIONS else "2.5.1"
    event = header.trigger_event if header.trigger_event.isalnum() else ""
    message_type = (
        components("ACK", event, "ACK") if _version_tuple(version) >= (2, 4) else "ACK^" + event
    )
    msh = "MSH|^~\\&|" + "|".join(
        [
            escape(header.receiving_application or conf.sending_application()),
            escape(header.receiving_facility),
            escape(header.sending_application),
            escape(header.sending_facility),
            timestamp(now or timezone.now(), settings.TIME_ZONE),
            "",
            message_type.rstrip("^"),
            new_control_id("A"),
            header.processing_id if header.processing_id in ("P", "T", "D") else "P",
            version,
        ]
    )
    msa = segment("MSA", {1: code, 2: escape(header.control_id), 3: escape(text[:80])})
    return "\r".join([msh, msa, *(_err_segment(p, version) for p in problems)])
