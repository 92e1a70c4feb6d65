"""The FHIR R4 read API: every answer parses with fhir.resources R4B."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.coverage import Coverage as FhirCoverage
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient as FhirPatient

from accounts.models import User
from audit.models import AuditEvent
from core.models import Location
from patients.models import Coverage, Patient, PatientFlag, PatientIdentifier
from patients.tests.factories import PatientFactory

FHIR_JSON = "application/fhir+json"
SYNTHEA = "https://github.com/synthetichealth/synthea"
BIRTHSEX = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
INTERPRETER = "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired"


@pytest.fixture
def fhir(frontdesk: User, token_client: Callable[[User], Client]) -> Client:
    return token_client(frontdesk)


@pytest.fixture
def full_patient(main_clinic: Location) -> Patient:
    patient = PatientFactory(
        home_location=main_clinic, family_name="Núñez", given_name="Zoë", middle_name="Ann Marie",
        suffix="Jr", preferred_name="Zo", birth_date="1984-07-02", sex_at_birth="F",
        gender_identity="non-binary", address_line1="931 Doyle Corner", address_line2="Apt 89",
        city="Wilmington", state="MA", postal_code="01887", phone_mobile="+16175550100",
        phone_home="+16175550111", email="zoe@example.org", preferred_language="Spanish",
        interpreter_needed=True, emergency_contact_name="Luis Núñez",
        emergency_contact_relationship="Brother", emergency_contact_phone="+16175550122",
    )  # fmt: skip
    PatientIdentifier.objects.create(patient=patient, system=SYNTHEA, value="abc-123")
    return patient


def parse(model: Any, response: Any) -> Any:
    assert response["Content-Type"].startswith(FHIR_JSON), response["Content-Type"]
    return model.model_validate_json(response.content)


def outcome(response: Any, status: int) -> Any:
    assert response.status_code == status, response.content
    result = parse(OperationOutcome, response)
    assert result.issue[0].severity == "error"
    return result.issue[0]


def last_event() -> AuditEvent:
    return AuditEvent.objects.order_by("-sequence").first()


def test_capability_statement_lists_what_is_served() -> None:
    response = Client().get("/fhir/r4/metadata")

    assert response.status_code == 200
    statement = parse(CapabilityStatement, response)
    assert statement.fhirVersion == "4.0.1"
    served = {r.type: r for r in statement.rest[0].resource}
    assert set(served) == {
        "Patient",
        "Coverage",
        "Practitioner",
        "Location",
        "Schedule",
        "Slot",
        "Appointment",
    }
    assert {p.name for p in served["Patient"].searchParam} >= {"name", "birthdate", "identifier"}
    assert {i.code for i in served["Patient"].interaction} == {"read", "search-type"}
    assert [p.name for p in served["Coverage"].searchParam] == ["patient"]


def test_reads_a_patient_with_every_mapped_element(fhir: Client, full_patient: Patient) -> None:
    response = fhir.get(f"/fhir/r4/Patient/{full_patient.public_id}")

    assert response.status_code == 200
    resource = parse(FhirPatient, response)
    assert resource.id == str(full_patient.public_id)
    mrn = resource.identifier[0]
    assert (mrn.system, mrn.value, mrn.type.coding[0].code) == (
        "urn:patientdesk:mrn", full_patient.mrn, "MR"
    )  # fmt: skip
    assert (SYNTHEA, "abc-123") in {(i.system, i.value) for i in resource.identifier}
    official, usual = resource.name
    assert (official.use, official.family, official.given, official.suffix) == (
        "official", "Núñez", ["Zoë", "Ann", "Marie"], ["Jr"]
    )  # fmt: skip
    assert (usual.use, usual.given) == ("usual", ["Zo"])
    assert {(t.system, t.use, t.value) for t in resource.telecom} == {
        ("phone", "mobile", "+16175550100"),
        ("phone", "home", "+16175550111"),
        ("email", "home", "zoe@example.org"),
    }
    assert (resource.gender, str(resource.birthDate)) == ("other", "1984-07-02")
    address = resource.address[0]
    assert (address.line, address.city, address.state, address.postalCode) == (
        ["931 Doyle Corner", "Apt 89"], "Wilmington", "MA", "01887"
    )  # fmt: skip
    language = resource.communication[0].language
    assert (language.coding[0].code, language.text) == ("es", "Spanish")
    contact = resource.contact[0]
    assert contact.relationship[0].coding[0].code == "C"
    assert (contact.name.text, contact.telecom[0].value) == ("Luis Núñez", "+16175550122")
    assert contact.relationship[1].text == "Brother"
    extensions = {e.url: e for e in resource.extension}
    assert extensions[BIRTHSEX].valueCode == "F"
    assert extensions[INTERPRETER].valueBoolean is True
    event = last_event()
    assert (event.event, event.patient_public_id) == ("patient.view", full_patient.public_id)


def test_minimal_patient_leaves_out_empty_elements(fhir: Client, patient: Patient) -> None:
    resource = parse(FhirPatient, fhir.get(f"/fhir/r4/Patient/{patient.public_id}"))

    assert resource.address is None
    assert resource.contact is None
    assert resource.gender == "female"


def test_merged_patient_links_to_the_survivor(fhir: Client, patient: Patient) -> None:
    survivor = PatientFactory(home_location=patient.home_location)
    Patient.objects.filter(pk=patient.pk).update(merged_into=survivor, is_active=False)

    resource = parse(FhirPatient, fhir.get(f"/fhir/r4/Patient/{patient.public_id}"))

    assert resource.active is False
    assert resource.link[0].type == "replaced-by"
    assert resource.link[0].other.reference == f"Patient/{survivor.public_id}"


@pytest.mark.parametrize(
    "query",
    [
        {"name": "hoeg"},
        {"name": "BUSTER"},
        {"birthdate": "1988-03-16"},
        {"birthdate": "eq1988-03-16"},
        {"identifier": "MRN"},
        {"identifier": "urn:patientdesk:mrn|MRN"},
        {"identifier": "urn:example:other|X-1"},
        {"name": "hoeger", "birthdate": "1988-03-16"},
    ],
)
def test_search_by_each_parameter_returns_a_searchset(
    fhir: Client, patient: Patient, query: dict[str, str]
) -> None:
    PatientIdentifier.objects.create(patient=patient, system="urn:example:other", value="X-1")
    query = {k: v.replace("MRN", patient.mrn) for k, v in query.items()}

    response = fhir.get("/fhir/r4/Patient", query)

    assert response.status_code == 200, response.content
    bundle = parse(Bundle, response)
    assert bundle.type == "searchset"
    assert [e.resource.id for e in bundle.entry] == [str(patient.public_id)]
    assert bundle.entry[0].fullUrl.endswith(f"/fhir/r4/Patient/{patient.public_id}")
    assert bundle.entry[0].search.mode == "match"
    assert last_event().event == "patient.search"


def test_search_with_no_match_returns_an_empty_bundle(fhir: Client, patient: Patient) -> None:
    response = fhir.get("/fhir/r4/Patient", {"identifier": "urn:example:other|missing"})

    bundle = parse(Bundle, response)
    assert bundle.entry is None
    event = last_event()
    assert (event.event, event.object_id) == ("patient.search", "0 results")


def test_search_pages_with_a_next_link(fhir: Client, main_clinic: Location) -> None:
    for given in ("Ann", "Bea", "Cy"):
        PatientFactory(home_location=main_clinic, family_name="Smith", given_name=given)

    first = parse(Bundle, fhir.get("/fhir/r4/Patient", {"name": "smith", "_count": "2"}))
    next_url = next(link.url for link in first.link if link.relation == "next")
    second = parse(Bundle, fhir.get(next_url))

    assert [e.resource.name[0].given[0] for e in first.entry] == ["Ann", "Bea"]
    assert [e.resource.name[0].given[0] for e in second.entry] == ["Cy"]
    assert not [link for link in second.link if link.relation == "next"]


def test_post_search_takes_form_encoded_parameters(fhir: Client, patient: Patient) -> None:
    response = fhir.post(
        "/fhir/r4/Patient/_search",
        "name=hoeger&birthdate=1988-03-16",
        content_type="application/x-www-form-urlencoded",
    )

    bundle = parse(Bundle, response)
    assert [e.resource.id for e in bundle.entry] == [str(patient.public_id)]
    assert all("hoeger" not in link.url for link in bundle.link)


def test_post_search_refuses_parameters_in_the_url(fhir: Client, patient: Patient) -> None:
    response = fhir.post("/fhir/r4/Patient/_search?name=hoeger", {})

    assert outcome(response, 400).expression == ["name"]


def test_post_search_refuses_a_json_body(fhir: Client) -> None:
    response = fhir.post("/fhir/r4/Patient/_search", {"name": "x"}, content_type="application/json")

    assert outcome(response, 400).code == "invalid"


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"birthdate": "1988"}, "birthdate"),
        ({"birthdate": "gt1988-01-01"}, "birthdate"),
        ({"birthdate": "1988-02-30"}, "birthdate"),
        ({"gender": "male"}, "gender"),
        ({"name:exact": "Hoeger"}, "name:exact"),
        ({"_count": "0"}, "_count"),
        ({"_count": "abc"}, "_count"),
        ({"_offset": "-1"}, "_offset"),
        ({"identifier": "sys|"}, "identifier"),
        ({"_format": "xml"}, "_format"),
    ],
)
def test_bad_search_parameters_answer_400_naming_them(
    fhir: Client, query: dict[str, str], parameter: str
) -> None:
    issue = outcome(fhir.get("/fhir/r4/Patient", query), 400)

    assert issue.expression == [parameter]
    assert parameter.split(":")[0] in issue.diagnostics


def test_repeated_parameter_is_refused(fhir: Client) -> None:
    issue = outcome(fhir.get("/fhir/r4/Patient?name=a&name=b"), 400)

    assert issue.expression == ["name"]


def test_coverage_search_maps_every_element(
    fhir: Client, patient: Patient, coverage: Coverage
) -> None:
    Coverage.objects.filter(pk=coverage.pk).update(
        relationship="spouse", subscriber_name="Dana Hoeger", effective_start="2024-01-01",
        effective_end="2024-12-31", order=2,
    )  # fmt: skip

    response = fhir.get("/fhir/r4/Coverage", {"patient": f"Patient/{patient.public_id}"})

    bundle = parse(Bundle, response)
    [entry] = bundle.entry
    resource = FhirCoverage.model_validate(entry.resource.model_dump())
    assert resource.beneficiary.reference == f"Patient/{patient.public_id}"
    assert (resource.payor[0].display, resource.payor[0].identifier.value) == ("Aetna", "60054")
    assert resource.subscriberId == "W123456789"
    assert resource.relationship.coding[0].code == "spouse"
    assert (str(resource.period.start), str(resource.period.end)) == ("2024-01-01", "2024-12-31")
    assert resource.order == 2
    assert resource.subscriber.display == "Dana Hoeger"
    assert {c.type.coding[0].code: c.value for c in resource.class_fhir} == {
        "group": "GRP-100", "plan": "Aetna Choice POS II"
    }  # fmt: skip
    assert last_event().event == "coverage.list"


def test_coverage_search_accepts_a_bare_id(fhir: Client, coverage: Coverage) -> None:
    response = fhir.get("/fhir/r4/Coverage", {"patient": str(coverage.patient.public_id)})

    assert len(parse(Bundle, response).entry) == 1


@pytest.mark.parametrize(
    "query", [{}, {"patient": "Practitioner/1"}, {"patient": "nope"}, {"beneficiary": "x"}]
)
def test_coverage_search_needs_a_patient(fhir: Client, query: dict[str, str]) -> None:
    outcome(fhir.get("/fhir/r4/Coverage", query), 400)


def test_reads_a_coverage(fhir: Client, coverage: Coverage) -> None:
    response = fhir.get(f"/fhir/r4/Coverage/{coverage.public_id}")

    resource = parse(FhirCoverage, response)
    assert (resource.status, resource.subscriberId) == ("active", "W123456789")


def test_unknown_endpoint_answers_404_outcome(fhir: Client) -> None:
    outcome(fhir.get("/fhir/r4/Observation"), 404)
    outcome(fhir.get("/fhir/r4/Patient/not-a-uuid"), 404)


def test_patient_flags_do_not_leak_into_the_resource(fhir: Client, patient: Patient) -> None:
    PatientFlag.objects.create(patient=patient, kind="behavioural", note="shouted at staff")

    response = fhir.get(f"/fhir/r4/Patient/{patient.public_id}")

    assert "shouted" not in response.content.decode()
