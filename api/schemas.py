"""Request and response schemas of the JSON API.

Input schemas forbid unknown fields (`extra="forbid"`) and bound every string, so a bad request
is answered 422 with the field named before anything reaches the services. Text may not contain
control characters or unpaired surrogates (PostgreSQL cannot store NUL; neither belongs in a
name or an address).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeAlias, cast

from django.core.exceptions import ValidationError as DjangoValidationError
from ninja import Schema
from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, create_model

from api.access import SORTS
from patients.models import ContactMethod, GenderIdentity, MedicareSecondaryType, Relationship


def _no_control_characters(value: str) -> str:
    for char in value:
        if unicodedata.category(char) in {"Cc", "Cs"}:
            raise ValueError("Remove control characters (such as NUL or line breaks).")
    return value


def text(max_length: int, min_length: int = 0) -> Any:
    """A bounded single-line string type."""
    return Annotated[
        str,
        StringConstraints(max_length=max_length, min_length=min_length),
        AfterValidator(_no_control_characters),
    ]


Sex = Literal["F", "M", "U"]
BenefitOrder = Literal[1, 2, 3]
if TYPE_CHECKING:  # the choices come from the models' TextChoices at run time
    Gender: TypeAlias = str
    Contact: TypeAlias = str
    Relation: TypeAlias = str
    SortField: TypeAlias = str
    MedicareSecondary: TypeAlias = str
else:
    Gender = Literal[(*GenderIdentity.values, "")]
    Contact = Literal[tuple(ContactMethod.values)]
    Relation = Literal[tuple(Relationship.values)]
    SortField = Literal[tuple(SORTS)]
    MedicareSecondary = Literal[(*MedicareSecondaryType.values, "")]


class InputSchema(Schema):
    model_config = ConfigDict(extra="forbid")


class PatientCreate(InputSchema):
    family_name: text(80, 1)  # type: ignore[valid-type]
    given_name: text(80, 1)  # type: ignore[valid-type]
    middle_name: text(80) = ""  # type: ignore[valid-type]
    suffix: text(10) = ""  # type: ignore[valid-type]
    preferred_name: text(80) = ""  # type: ignore[valid-type]
    birth_date: dt.date
    sex_at_birth: Sex
    gender_identity: Gender = ""
    address_line1: text(120) = ""  # type: ignore[valid-type]
    address_line2: text(120) = ""  # type: ignore[valid-type]
    city: text(80) = ""  # type: ignore[valid-type]
    state: text(2) = Field("", description="US state code, e.g. MA.")  # type: ignore[valid-type]
    postal_code: text(10) = Field("", description="ZIP code: 12345 or 12345-6789.")  # type: ignore[valid-type]
    phone_mobile: text(20) = ""  # type: ignore[valid-type]
    phone_home: text(20) = ""  # type: ignore[valid-type]
    email: text(254) = ""  # type: ignore[valid-type]
    preferred_language: text(40, 1) = "English"  # type: ignore[valid-type]
    interpreter_needed: bool = False
    preferred_contact: Contact = "phone"
    consent_sms: bool = False
    consent_email: bool = False
    emergency_contact_name: text(160) = ""  # type: ignore[valid-type]
    emergency_contact_relationship: text(40) = ""  # type: ignore[valid-type]
    emergency_contact_phone: text(20) = ""  # type: ignore[valid-type]
    guarantor_relationship: Relation = "self"
    guarantor_name: text(160) = ""  # type: ignore[valid-type]
    guarantor_phone: text(20) = ""  # type: ignore[valid-type]
    guarantor_address: text(240) = ""  # type: ignore[valid-type]
    home_location: uuid.UUID | None = Field(
        None,
        description="Public id of the home location; may be left out by a user of one location.",
    )
    confirm_not_duplicate: bool = Field(
        False, description="Register even though possible duplicates were reported (409)."
    )

    API_ONLY: ClassVar[set[str]] = {"home_location", "confirm_not_duplicate"}

    def values(self) -> dict[str, Any]:
        """The patient fields the client sent (the model's defaults fill in the rest)."""
        return self.model_dump(exclude_unset=True, exclude=self.API_ONLY)


class CoverageCreate(InputSchema):
    payer_name: text(120, 1)  # type: ignore[valid-type]
    payer_identifier: text(20) = ""  # type: ignore[valid-type]
    plan_name: text(120) = ""  # type: ignore[valid-type]
    member_id: text(40, 1)  # type: ignore[valid-type]
    group_number: text(40) = ""  # type: ignore[valid-type]
    subscriber_name: text(160) = ""  # type: ignore[valid-type]
    subscriber_birth_date: dt.date | None = None
    relationship: Relation = Field(
        "self", description="The patient's relationship to the subscriber."
    )
    effective_start: dt.date | None = None
    effective_end: dt.date | None = None
    order: BenefitOrder = Field(
        1, description="Order of benefits: 1 primary, 2 secondary, 3 tertiary."
    )
    is_active: bool = True
    medicare_secondary_type: MedicareSecondary = Field(
        "",
        description=(
            "Why Medicare is not the primary payer (X12 837P SBR05), needed on a Medicare "
            "coverage that is secondary or tertiary: "
            + "; ".join(f"{code} {label}" for code, label in MedicareSecondaryType.choices)
            + "."
        ),
    )

    def values(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class PatchMixin:
    """PATCH semantics: only the fields sent change; null clears an optional field."""

    NOT_NULL: ClassVar[frozenset[str]] = frozenset()
    TEXT_FIELDS: ClassVar[frozenset[str]] = frozenset()

    def values(self) -> dict[str, Any]:
        sent = self.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
        nulls = sorted(
            name for name, value in sent.items() if value is None and name in self.NOT_NULL
        )
        if nulls:
            raise DjangoValidationError(
                dict.fromkeys(nulls, "This field cannot be null; leave it out to keep it.")
            )
        return {
            name: ("" if value is None and name in self.TEXT_FIELDS else value)
            for name, value in sent.items()
        }


def _patch_schema(name: str, base: type[Schema], exclude: set[str]) -> Any:
    fields: dict[str, Any] = {}
    for field_name, info in base.model_fields.items():
        if field_name in exclude:
            continue
        annotation: Any = info.annotation
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]
        fields[field_name] = (annotation | None, Field(None, description=info.description))
    model: Any = cast(Any, create_model)(
        name, __base__=(PatchMixin, InputSchema), __module__=__name__, **fields
    )
    infos = {n: i for n, i in base.model_fields.items() if n in fields}
    # Blank-able text clears to ""; required fields and those with a real default refuse null.
    model.TEXT_FIELDS = frozenset(n for n, i in infos.items() if i.default == "")
    model.NOT_NULL = frozenset(
        n for n, i in infos.items() if i.is_required() or i.default not in ("", None)
    )
    return model


PatientPatch = _patch_schema("PatientPatch", PatientCreate, PatientCreate.API_ONLY)
CoveragePatch = _patch_schema("CoveragePatch", CoverageCreate, set())


class PatientSearch(InputSchema):
    """Search criteria (PHI): sent in the body, never in the URL."""

    name: text(160) = Field(  # type: ignore[valid-type]
        "", description="Prefix of family or given name; 'family, given' or 'given family'."
    )
    birth_date: dt.date | None = None
    mrn: text(20) = ""  # type: ignore[valid-type]
    phone: text(30) = ""  # type: ignore[valid-type]
    member_id: text(40) = ""  # type: ignore[valid-type]
    limit: int = Field(25, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1000)


def _as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """Naive times are taken as UTC; times that cannot be expressed in UTC are refused."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    except OverflowError as exc:
        raise ValueError("Give a time between the years 1 and 9999 (UTC).") from exc


class PatientListParams(Schema):
    """Filters of GET /patients: none of them identifies a patient."""

    location: uuid.UUID | None = Field(None, description="Public id of a home location.")
    updated_since: Annotated[dt.datetime | None, AfterValidator(_as_utc)] = Field(
        None, description="Changed at or after this time (ISO 8601; UTC when no offset)."
    )
    sort: SortField = Field("-updated_at", description="Order of the results.")
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10_000_000)


# ---- responses ---------------------------------------------------------------------------


class FieldError(Schema):
    field: str = Field(description="The field at fault ('' for the request as a whole).")
    message: str


class DuplicateCandidate(Schema):
    public_id: uuid.UUID
    mrn: str


class Problem(Schema):
    """RFC 9457 problem details (application/problem+json)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
    candidates: list[DuplicateCandidate] | None = None


class LocationRef(Schema):
    public_id: uuid.UUID
    code: str
    name: str


class Alert(Schema):
    kind: str
    severity: str
    label: str


class Identifier(Schema):
    system: str
    value: str
    is_alias: bool


class PatientSummary(Schema):
    public_id: uuid.UUID
    mrn: str
    family_name: str
    given_name: str
    middle_name: str
    preferred_name: str
    birth_date: dt.date
    sex_at_birth: str
    home_location: LocationRef
    is_active: bool
    alerts: list[Alert]
    updated_at: dt.datetime


class PatientOut(PatientSummary):
    suffix: str
    gender_identity: str
    address_line1: str
    address_line2: str
    city: str
    state: str
    postal_code: str
    phone_mobile: str
    phone_home: str
    email: str
    preferred_language: str
    interpreter_needed: bool
    preferred_contact: str
    consent_sms: bool
    consent_email: bool
    emergency_contact_name: str
    emergency_contact_relationship: str
    emergency_contact_phone: str
    guarantor_relationship: str
    guarantor_name: str
    guarantor_phone: str
    guarantor_address: str
    merged_into: uuid.UUID | None
    identifiers: list[Identifier]
    created_at: dt.datetime


class PatientPage(Schema):
    count: int = Field(description="Patients matching the filters (all pages).")
    limit: int
    offset: int
    items: list[PatientSummary]


class SearchPage(Schema):
    limit: int
    offset: int
    has_more: bool
    items: list[PatientSummary]


class CoverageOut(Schema):
    public_id: uuid.UUID
    patient: uuid.UUID
    payer_name: str
    payer_identifier: str
    plan_name: str
    member_id: str
    group_number: str
    subscriber_name: str
    subscriber_birth_date: dt.date | None
    relationship: str
    effective_start: dt.date | None
    effective_end: dt.date | None
    order: int
    is_active: bool
    medicare_secondary_type: str
    verified_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
