"""Billing screens: the access matrix for every route, and what each screen does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import UserFactory
from audit.models import AuditEvent
from billing import services
from billing.models import (
    ChargeLine,
    Claim,
    ClaimStatus,
    Encounter,
    FeeSchedule,
    FeeScheduleEntry,
    Payer,
)
from billing.services import LineInput
from billing.tests.factories import ClaimFactory, FeeScheduleFactory, PayerFactory
from core.models import Location
from patients.models import Coverage, Patient

pytestmark = pytest.mark.django_db

ClientFor = Callable[[User], Client]


@pytest.fixture
def claim(billing_user: User, encounter: Encounter) -> Claim:
    services.charge_line_add(actor=billing_user, encounter=encounter, line=LineInput(code="99213"))
    return services.claim_create_from_encounter(actor=billing_user, encounter=encounter)


@pytest.fixture
def line(billing_user: User, encounter: Encounter) -> ChargeLine:
    return services.charge_line_add(
        actor=billing_user, encounter=encounter, line=LineInput(code="85025")
    )


@pytest.fixture
def schedule(fees: FeeSchedule) -> FeeSchedule:
    return fees


@pytest.fixture
def elsewhere_billing(riverside: Location) -> User:
    """A billing specialist who works at Riverside only."""
    return UserFactory(username="rb", roles=["billing_specialist"], locations=[riverside])


def _routes(
    claim: Claim, encounter: Encounter, line: ChargeLine, payer: Payer, schedule: FeeSchedule
) -> dict[str, tuple[str, str, str, dict[str, str]]]:
    """name -> (method, url, capability kind, post data). Kind: read / write / setup."""
    c, e = claim.public_id, encounter.public_id
    return {
        "home": ("get", reverse("billing:home"), "read", {}),
        "claim_list": ("get", reverse("billing:claim_list"), "read", {}),
        "claim": ("get", reverse("billing:claim", args=[c]), "patient-read", {}),
        "claim_scrub": ("post", reverse("billing:claim_scrub", args=[c]), "claims", {}),
        "claim_status": (
            "post",
            reverse("billing:claim_status", args=[c]),
            "claims",
            {"to_status": "ready"},
        ),
        "claim_replace": ("post", reverse("billing:claim_replace", args=[c]), "claims", {}),
        "claim_void": ("post", reverse("billing:claim_void", args=[c]), "claims", {}),
        "encounter_new": (
            "get",
            reverse("billing:encounter_new", args=[encounter.patient.public_id]),
            "charges",
            {},
        ),
        "encounter": ("get", reverse("billing:encounter", args=[e]), "patient-read", {}),
        "charge_add": (
            "post",
            reverse("billing:charge_add", args=[e]),
            "charges",
            {"code": "36415", "units": "1", "pointer1": "1"},
        ),
        "claim_create": ("post", reverse("billing:claim_create", args=[e]), "charges", {}),
        "charge_correct": (
            "post",
            reverse("billing:charge_correct", args=[line.public_id]),
            "charges",
            {"reason": "Wrong code"},
        ),
        "icd10_check": ("post", reverse("billing:icd10_check"), "charges", {"dx1": "J45.909"}),
        "payer_list": ("get", reverse("billing:payer_list"), "setup", {}),
        "payer_new": ("get", reverse("billing:payer_new"), "setup", {}),
        "payer_edit": ("get", reverse("billing:payer_edit", args=[payer.public_id]), "setup", {}),
        "fee_schedule_list": ("get", reverse("billing:fee_schedule_list"), "setup", {}),
        "fee_schedule_new": ("get", reverse("billing:fee_schedule_new"), "setup", {}),
        "fee_schedule": (
            "get",
            reverse("billing:fee_schedule", args=[schedule.public_id]),
            "setup",
            {},
        ),
        "fee_entry_set": (
            "post",
            reverse("billing:fee_entry_set", args=[schedule.public_id]),
            "setup",
            {"code": "J1100", "amount": "5.00"},
        ),
    }


ROUTE_NAMES = [
    "home", "claim_list", "claim", "claim_scrub", "claim_status", "claim_replace", "claim_void",
    "encounter_new", "encounter", "charge_add", "claim_create", "charge_correct", "icd10_check",
    "payer_list",
    "payer_new", "payer_edit", "fee_schedule_list", "fee_schedule_new", "fee_schedule",
    "fee_entry_set",
]  # fmt: skip


@pytest.fixture
def routes(
    claim: Claim, encounter: Encounter, line: ChargeLine, payer: Payer, schedule: FeeSchedule
) -> dict[str, tuple[str, str, str, dict[str, str]]]:
    return _routes(claim, encounter, line, payer, schedule)


def _call(client: Client, method: str, url: str, data: dict[str, str]) -> int:
    response = client.get(url) if method == "get" else client.post(url, data)
    return response.status_code


@pytest.mark.parametrize("name", ROUTE_NAMES)
def test_the_billing_specialist_may_use_every_screen(
    name: str, routes: dict, login_client: ClientFor, billing_user: User
) -> None:
    method, url, _, data = routes[name]

    assert _call(login_client(billing_user), method, url, data) in (200, 302)


@pytest.mark.parametrize("name", ROUTE_NAMES)
def test_the_front_desk_reads_billing_but_cannot_write(
    name: str, routes: dict, login_client: ClientFor, frontdesk: User
) -> None:
    method, url, kind, data = routes[name]

    status = _call(login_client(frontdesk), method, url, data)

    assert status == (200 if kind in ("read", "patient-read") else 403)


@pytest.mark.parametrize(
    "name",
    ["claim", "claim_scrub", "claim_status", "claim_replace", "claim_void", "encounter_new",
     "encounter", "charge_add", "claim_create", "charge_correct"],
)  # fmt: skip
def test_a_user_from_another_location_gets_404(
    name: str, routes: dict, login_client: ClientFor, elsewhere_billing: User
) -> None:
    method, url, _, data = routes[name]

    assert _call(login_client(elsewhere_billing), method, url, data) == 404
    assert AuditEvent.objects.filter(outcome="denied").exists()


@pytest.mark.parametrize("name", ROUTE_NAMES)
def test_anonymous_users_are_sent_to_sign_in(name: str, routes: dict, client: Client) -> None:
    method, url, _, data = routes[name]

    response = client.get(url) if method == "get" else client.post(url, data)

    assert response.status_code == 302
    assert "login" in response["Location"]


@pytest.mark.parametrize("name", ROUTE_NAMES)
def test_the_wrong_method_gets_405(
    name: str, routes: dict, login_client: ClientFor, billing_user: User
) -> None:
    method, url, _, _ = routes[name]
    client = login_client(billing_user)

    response = client.delete(url) if method == "get" else client.get(url)

    assert response.status_code == 405


def test_the_service_director_cannot_see_billing_screens(
    routes: dict, login_client: ClientFor, persona: Callable[[str], User]
) -> None:
    client = login_client(persona("servicedirector"))

    assert client.get(routes["claim"][1]).status_code == 403
    assert client.get(routes["home"][1]).status_code == 403


# ---- what the screens do -------------------------------------------------------------------


def test_entering_an_encounter_with_a_category_code_names_it_inline(
    login_client: ClientFor, billing_user: User, patient: Patient, practitioner: object
) -> None:
    # given
    url = reverse("billing:encounter_new", args=[patient.public_id])
    data = {
        "date_of_service": timezone.localdate().isoformat(),
        "rendering_practitioner": str(practitioner.public_id),
        "place_of_service": "11",
        "dx1": "J45.909",
        "dx2": "E11",
    }

    # when
    response = login_client(billing_user).post(url, data)

    # then
    html = response.content.decode()
    assert response.status_code == 422
    assert "E11 is a category, not a billable code" in html
    assert 'id="id_dx2_error"' in html
    assert "is-invalid" in html
    assert not Encounter.objects.exists()


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        ({"dx3": "j45.909"}, "J45.909: Unspecified asthma, uncomplicated"),
        ({"dx1": "E11"}, "E11 is a category, not a billable code"),
        ({"dx1": "QQQ"}, "QQQ is not an ICD-10-CM code"),
    ],
)
def test_the_diagnosis_check_describes_the_code_or_names_the_problem(
    login_client: ClientFor, billing_user: User, data: dict[str, str], shown: str
) -> None:
    response = login_client(billing_user).post(reverse("billing:icd10_check"), data)

    assert response.status_code == 200
    assert shown in response.content.decode()


def test_entering_an_encounter_opens_its_charge_page(
    login_client: ClientFor,
    billing_user: User,
    patient: Patient,
    practitioner: object,
    provider: object,
) -> None:
    url = reverse("billing:encounter_new", args=[patient.public_id])
    data = {
        "date_of_service": timezone.localdate().isoformat(),
        "rendering_practitioner": str(practitioner.public_id),
        "place_of_service": "11",
        "dx1": "j45.909",
    }

    response = login_client(billing_user).post(url, data)

    encounter = Encounter.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("billing:encounter", args=[encounter.public_id])
    assert encounter.diagnoses.get().code == "J45909"


def test_a_charge_is_priced_from_the_fee_schedule_and_shown(
    login_client: ClientFor, billing_user: User, encounter: Encounter
) -> None:
    client = login_client(billing_user)
    url = reverse("billing:charge_add", args=[encounter.public_id])

    response = client.post(url, {"code": "99213", "units": "1", "pointer1": "2"})

    assert response.status_code == 302
    page = client.get(reverse("billing:encounter", args=[encounter.public_id])).content.decode()
    assert "120.00" in page
    assert "J45.909" in page
    assert "Type 2 diabetes mellitus without complications" in page


def test_a_bad_pointer_is_shown_on_its_field(
    login_client: ClientFor, billing_user: User, encounter: Encounter
) -> None:
    url = reverse("billing:charge_add", args=[encounter.public_id])

    response = login_client(billing_user).post(
        url, {"code": "99213", "units": "1", "pointer1": "5"}
    )

    html = response.content.decode()
    assert response.status_code == 422
    assert "Pointer 5 has no diagnosis" in html
    assert 'id="id_pointer1_error"' in html


def test_marking_a_faulty_claim_ready_shows_every_problem_with_its_field(
    login_client: ClientFor, billing_user: User, claim: Claim
) -> None:
    # given
    Coverage.objects.filter(pk=claim.coverage_id).update(member_id="")
    Patient.objects.filter(pk=claim.patient_id).update(city="")
    client = login_client(billing_user)

    # when
    response = client.post(
        reverse("billing:claim_status", args=[claim.public_id]), {"to_status": "ready"}
    )
    page = client.get(reverse("billing:claim", args=[claim.public_id])).content.decode()

    # then
    assert response.status_code == 302
    assert "Not ready: fix the 2 problem(s)" in page
    assert "member id is missing" in page
    assert "patient.city" in page
    assert "coverage.member_id" in page
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.DRAFT


def test_a_clean_claim_moves_to_ready_and_the_timeline_shows_it(
    login_client: ClientFor, billing_user: User, claim: Claim
) -> None:
    client = login_client(billing_user)

    client.post(reverse("billing:claim_status", args=[claim.public_id]), {"to_status": "ready"})
    page = client.get(reverse("billing:claim", args=[claim.public_id])).content.decode()

    claim.refresh_from_db()
    assert claim.status == ClaimStatus.READY
    assert "Draft → <strong>Ready to batch</strong>" in page


def test_a_transition_that_is_not_allowed_answers_422_with_the_reason(
    login_client: ClientFor, billing_user: User, claim: Claim
) -> None:
    response = login_client(billing_user).post(
        reverse("billing:claim_status", args=[claim.public_id]), {"to_status": "paid"}
    )

    assert response.status_code == 422
    assert "A draft claim cannot become paid." in response.content.decode()


def test_a_payer_is_added_and_audited(login_client: ClientFor, billing_user: User) -> None:
    data = {
        "name": "Cigna",
        "payer_id": "62308",
        "claim_filing_indicator": "CI",
        "timely_filing_days": "90",
        "appeal_days": "180",
        "is_active": "on",
    }

    response = login_client(billing_user).post(reverse("billing:payer_new"), data)

    assert response.status_code == 302
    assert Payer.objects.get(payer_id="62308").timely_filing_days == 90
    assert AuditEvent.objects.filter(event="payer.save").exists()


def test_a_duplicate_payer_id_is_shown_on_its_field(
    login_client: ClientFor, billing_user: User, payer: Payer
) -> None:
    data = {
        "name": "Other",
        "payer_id": payer.payer_id,
        "claim_filing_indicator": "CI",
        "timely_filing_days": "90",
        "appeal_days": "180",
    }

    response = login_client(billing_user).post(reverse("billing:payer_new"), data)

    assert response.status_code == 422
    assert 'id="id_payer_id_error"' in response.content.decode()


def test_a_cpt_description_is_refused_in_a_fee_schedule(
    login_client: ClientFor, billing_user: User, fees: FeeSchedule
) -> None:
    url = reverse("billing:fee_entry_set", args=[fees.public_id])

    response = login_client(billing_user).post(
        url, {"code": "99214", "amount": "150.00", "description": "Office visit"}
    )

    assert response.status_code == 422
    assert "licensed by the AMA" in response.content.decode()
    assert not FeeScheduleEntry.objects.filter(code="99214").exists()


def test_a_price_is_set_in_a_fee_schedule(
    login_client: ClientFor, billing_user: User, fees: FeeSchedule
) -> None:
    url = reverse("billing:fee_entry_set", args=[fees.public_id])

    login_client(billing_user).post(
        url, {"code": "j1100", "amount": "4.50", "description": "Dexamethasone injection, 1 mg"}
    )

    entry = FeeScheduleEntry.objects.get(schedule=fees, code="J1100")
    assert entry.amount == Decimal("4.50")


def test_the_claim_list_filters_by_status_without_patient_data_in_the_url(
    login_client: ClientFor, billing_user: User, claim: Claim
) -> None:
    client = login_client(billing_user)

    drafts = client.get(reverse("billing:claim_list"), {"status": "draft"}).content.decode()
    paid = client.get(reverse("billing:claim_list"), {"status": "paid"}).content.decode()

    assert claim.patient_control_number in drafts
    assert claim.patient_control_number not in paid


def test_the_claim_list_ignores_a_bad_filter(
    login_client: ClientFor, billing_user: User, claim: Claim
) -> None:
    response = login_client(billing_user).get(
        reverse("billing:claim_list"), {"status": "nonsense", "page": "x"}
    )

    assert response.status_code == 200
    assert claim.patient_control_number in response.content.decode()


def test_the_claim_list_runs_a_fixed_number_of_queries(
    login_client: ClientFor,
    billing_user: User,
    main_clinic: Location,
    django_assert_max_num_queries: Callable[..., object],
) -> None:
    # given: 12 claims at the user's location
    for _ in range(12):
        ClaimFactory(encounter__location=main_clinic, lines=2)
    client = login_client(billing_user)
    client.get(reverse("billing:claim_list"))

    # when / then: the same count as for one claim (no query per row)
    with django_assert_max_num_queries(16):
        response = client.get(reverse("billing:claim_list"))
    assert response.content.decode().count("claim-status-draft") == 12


def test_the_work_list_runs_a_fixed_number_of_queries(
    login_client: ClientFor,
    billing_user: User,
    main_clinic: Location,
    django_assert_max_num_queries: Callable[..., object],
) -> None:
    for _ in range(6):
        ClaimFactory(encounter__location=main_clinic)
    client = login_client(billing_user)
    client.get(reverse("billing:home"))

    with django_assert_max_num_queries(16):
        response = client.get(reverse("billing:home"))
    assert response.status_code == 200


def test_setup_lists_run_a_fixed_number_of_queries(
    login_client: ClientFor,
    billing_user: User,
    django_assert_max_num_queries: Callable[..., object],
) -> None:
    for n in range(5):
        payer = PayerFactory()
        FeeScheduleFactory(payer=payer, effective_start=dt.date(2024, 1, n + 1))
    client = login_client(billing_user)
    client.get(reverse("billing:payer_list"))

    with django_assert_max_num_queries(12):
        client.get(reverse("billing:payer_list"))
    with django_assert_max_num_queries(12):
        client.get(reverse("billing:fee_schedule_list"))
