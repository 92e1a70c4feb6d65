from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from core.models import Location
from patients.models import Patient
from patients.tests.conftest import HTMX
from patients.tests.factories import PatientFactory, PatientFlagFactory

pytestmark = pytest.mark.django_db

URL = reverse("patients:search")


def test_search_page_has_one_autofocused_search_box_posting_to_itself(
    client_as: Callable[[str], Client],
) -> None:
    response = client_as("frontdesk").get(URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert 'method="post"' in html
    assert 'hx-post="/patients/"' in html
    assert 'hx-trigger="submit, input changed delay:250ms"' in html
    assert "data-search-box" in html
    assert "autofocus" in html


def test_anonymous_users_are_sent_to_sign_in(client: Client) -> None:
    response = client.post(URL, {"q": "smith"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_a_role_without_patient_access_is_refused(client_as: Callable[[str], Client]) -> None:
    response = client_as("servicedirector").post(URL, {"q": "smith"}, **HTMX)

    assert response.status_code == 403
    assert AuditEvent.objects.filter(event="auth.permission_denied", outcome="denied").exists()


def test_search_answers_405_to_other_methods(client_as: Callable[[str], Client]) -> None:
    assert client_as("frontdesk").put(URL).status_code == 405


def test_typing_a_name_prefix_returns_the_results_partial(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    PatientFlagFactory.create(patient=patient, kind="behavioural", severity="critical")

    response = client_as("frontdesk").post(URL, {"q": "smi"}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert "data-result-list" in html
    assert f'data-result-url="/patients/{patient.public_id}/"' in html
    assert "Smith, Joanna" in html
    assert "04/12/1980" in html
    assert patient.mrn in html
    assert "(617) 555-0142" in html
    assert "Main Street Clinic" in html
    assert "text-bg-danger" in html
    assert "Behavioural alert" in html


def test_a_plain_post_renders_the_whole_page_with_results(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    response = client_as("frontdesk").post(URL, {"q": "smith, jo"})

    html = response.content.decode()
    assert "<html" in html
    assert "Smith, Joanna" in html


def test_search_by_separate_fields(client_as: Callable[[str], Client], patient: Patient) -> None:
    client = client_as("frontdesk")

    by_dob = client.post(URL, {"birth_date": "1980-04-12"}, **HTMX).content.decode()
    by_mrn = client.post(URL, {"mrn": patient.mrn}, **HTMX).content.decode()
    by_phone = client.post(URL, {"phone": "617-555-0142"}, **HTMX).content.decode()

    for html in (by_dob, by_mrn, by_phone):
        assert "Smith, Joanna" in html


def test_typing_an_mrn_or_a_date_in_the_box_searches_by_it(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    client = client_as("frontdesk")

    assert "Smith, Joanna" in client.post(URL, {"q": patient.mrn}, **HTMX).content.decode()
    assert "Smith, Joanna" in client.post(URL, {"q": "04/12/1980"}, **HTMX).content.decode()


def test_patients_of_other_locations_are_not_listed(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    html = client_as("outsider").post(URL, {"q": "smith"}, **HTMX).content.decode()

    assert "Smith, Joanna" not in html
    assert "No patient at your locations" in html


def test_an_exact_mrn_at_another_location_offers_break_glass(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    html = client_as("outsider").post(URL, {"q": patient.mrn}, **HTMX).content.decode()

    assert "Smith" not in html
    assert "Break the glass" in html
    assert reverse("patients:break_glass", args=[patient.public_id]) in html


def test_bad_input_is_named_not_a_server_error(client_as: Callable[[str], Client]) -> None:
    client = client_as("frontdesk")

    bad_date = client.post(URL, {"q": "02/30/1980"}, **HTMX)
    bad_mrn = client.post(URL, {"mrn": "12345678"}, **HTMX)
    short_phone = client.post(URL, {"phone": "555-01"}, **HTMX)

    assert bad_date.status_code == 200
    assert "02/30/1980 is not a real date" in bad_date.content.decode()
    assert "MRN:" in bad_mrn.content.decode()
    assert "check digit" in bad_mrn.content.decode()
    assert "area code" in short_phone.content.decode()


def test_a_single_letter_waits_for_more_typing_without_searching(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    html = client_as("frontdesk").post(URL, {"q": "s"}, **HTMX).content.decode()

    assert "at least two letters" in html
    assert not AuditEvent.objects.filter(event="patient.search").exists()


def test_results_are_paged_with_post_buttons(
    client_as: Callable[[str], Client], main_clinic: Location
) -> None:
    for n in range(27):
        PatientFactory.create(
            home_location=main_clinic, family_name=f"Pager{n:02d}", given_name="Ann"
        )
    client = client_as("frontdesk")

    first = client.post(URL, {"q": "pager"}, **HTMX).content.decode()
    second = client.post(URL, {"q": "pager", "page": "2"}, **HTMX).content.decode()

    assert first.count("data-result-url=") == 25
    assert 'name="page" value="2"' in first
    assert second.count("data-result-url=") == 2
    assert 'name="page" value="1"' in second
    assert "Pager26" in second


def _queries_for(client: Client, data: dict[str, str]) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.post(URL, data, **HTMX)
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_results_partial_takes_the_same_number_of_queries_for_2_or_20_results(
    client_as: Callable[[str], Client],
    main_clinic: Location,
    django_assert_max_num_queries: Callable[..., object],
) -> None:
    # given
    client = client_as("frontdesk")
    for n in range(2):
        p = PatientFactory.create(home_location=main_clinic, family_name=f"Few{n}")
        PatientFlagFactory.create(patient=p)
    for n in range(20):
        p = PatientFactory.create(home_location=main_clinic, family_name=f"Many{n}")
        PatientFlagFactory.create(patient=p)
    client.post(URL, {"q": "warm up"}, **HTMX)

    # when
    few = _queries_for(client, {"q": "few"})
    many = _queries_for(client, {"q": "many"})

    # then
    assert few == many
    with django_assert_max_num_queries(few):
        client.post(URL, {"q": "many"}, **HTMX)
