"""Denial screens: access matrix, filters, bulk assign, actions, appeal PDF."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent, Outcome
from billing.models import ClaimStatus
from remittance.models import DenialStatus

from .denial_helpers import deny

pytestmark = pytest.mark.django_db

QUEUE = "/remittances/denials/"


def _url(denial, action: str = "") -> str:
    return f"/remittances/denials/{denial.public_id}/" + (f"{action}/" if action else "")


def test_billing_specialist_sees_the_queue_sorted_by_due_date_with_counts(
    make_claim, persona, login_client, django_assert_max_num_queries
):
    # given
    for number in range(3):
        deny(make_claim, f"PD0000030{number}")
    client = login_client(persona("billing"))
    # when
    with django_assert_max_num_queries(20):
        response = client.get(QUEUE)
    # then
    assert response.status_code == 200
    body = response.content.decode()
    assert body.index("PD00000300") < body.index("PD00000302")
    assert "data-denial-chart" in body
    assert 'Medical necessity: <span class="fw-semibold">3</span>' in body
    assert AuditEvent.objects.filter(event="denial.queue").exists()


def test_queue_query_count_does_not_grow_with_denials(
    make_claim, persona, login_client, django_assert_max_num_queries
):
    for number in range(6):
        deny(make_claim, f"PD0000031{number}")
    client = login_client(persona("billing"))
    with django_assert_max_num_queries(20):
        assert client.get(QUEUE).status_code == 200


def test_queue_filters_by_status_and_highlights_overdue(make_claim, persona, login_client, biller):
    # given one open (long overdue: 2024 remittance) and one in progress
    first = deny(make_claim, "PD00000320")
    second = deny(make_claim, "PD00000321")
    from remittance.denials import denial_set_status

    denial_set_status(actor=biller, denial=second, to_status=DenialStatus.IN_PROGRESS)
    client = login_client(persona("billing"))
    # when
    response = client.get(QUEUE, {"status": "open"})
    # then
    body = response.content.decode()
    assert first.claim.patient_control_number in body
    assert second.claim.patient_control_number not in body
    assert 'class="text-danger fw-semibold"' in body
    assert "overdue</span>" in body


def test_a_denial_due_in_the_future_is_not_highlighted(make_claim, persona, login_client):
    # given a denial whose appeal deadline is still ahead
    denial = deny(make_claim, "PD00000322")
    denial.due_date = timezone.localdate() + dt.timedelta(days=30)
    denial.save(update_fields=["due_date"])
    # when
    body = login_client(persona("billing")).get(QUEUE).content.decode()
    # then
    assert denial.claim.patient_control_number in body
    assert "text-danger fw-semibold" not in body
    assert "overdue</span>" not in body


def test_a_bad_filter_date_is_named_and_no_500(persona, login_client):
    response = login_client(persona("billing")).get(QUEUE, {"due_before": "31/31/2024"})
    assert response.status_code == 200
    assert "Due before" in response.content.decode()
    assert "Enter the date as YYYY-MM-DD." in response.content.decode()


def test_a_user_at_another_location_sees_none_of_our_denials(make_claim, persona, login_client):
    denial = deny(make_claim, "PD00000330")
    response = login_client(persona("outsider")).get(QUEUE)
    assert response.status_code == 200
    assert denial.claim.patient_control_number not in response.content.decode()


def test_front_desk_sees_the_queue_read_only(make_claim, persona, login_client):
    deny(make_claim, "PD00000331")
    response = login_client(persona("frontdesk")).get(QUEUE)
    assert response.status_code == 200
    assert "bulk-assign" not in response.content.decode()


def test_a_role_without_billing_access_gets_403_on_the_queue(persona, login_client):
    response = login_client(persona("privacy")).get(QUEUE)
    assert response.status_code == 403
    assert AuditEvent.objects.filter(
        event="auth.permission_denied", outcome=Outcome.DENIED
    ).exists()


def test_anonymous_is_sent_to_sign_in(make_claim, client):
    denial = deny(make_claim, "PD00000332")
    for url in (QUEUE, _url(denial)):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("accounts:login") in response["Location"]
    assert client.post(_url(denial, "notes"), {"text": "x"}).status_code == 302


def test_wrong_methods_answer_405(make_claim, persona, login_client):
    denial = deny(make_claim, "PD00000333")
    client = login_client(persona("billing"))
    assert client.post(QUEUE).status_code == 405
    assert client.post(_url(denial)).status_code == 405
    for action in ("assign", "status", "notes", "appeal", "resubmit"):
        assert client.get(_url(denial, action)).status_code == 405, action
    assert client.get("/remittances/denials/assign/").status_code == 405


def test_bulk_assign_from_the_queue(make_claim, persona, login_client):
    # given
    first = deny(make_claim, "PD00000340")
    second = deny(make_claim, "PD00000341")
    director = persona("meddirector")
    client = login_client(persona("billing"))
    # when
    response = client.post(
        "/remittances/denials/assign/",
        {
            "owner": str(director.public_id),
            "denials": [str(first.public_id), str(second.public_id)],
        },
    )
    # then
    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.owner == director
    assert second.owner == director


def test_bulk_assign_without_ticks_says_so(persona, login_client):
    client = login_client(persona("billing"))
    response = client.post("/remittances/denials/assign/", {"owner": "none"}, follow=True)
    assert "Not assigned. Denials: Tick at least one denial to assign." in response.content.decode()


def test_bulk_assign_of_another_locations_denial_is_404(make_claim, persona, login_client):
    denial = deny(make_claim, "PD00000342")
    outsider = persona("outsider")
    response = login_client(outsider).post(
        "/remittances/denials/assign/", {"owner": "none", "denials": [str(denial.public_id)]}
    )
    assert response.status_code == 404


def test_front_desk_cannot_bulk_assign(make_claim, persona, login_client):
    denial = deny(make_claim, "PD00000343")
    response = login_client(persona("frontdesk")).post(
        "/remittances/denials/assign/", {"owner": "none", "denials": [str(denial.public_id)]}
    )
    assert response.status_code == 403


@pytest.mark.parametrize("who", ["billing", "meddirector"])
def test_allowed_roles_see_the_denial_with_our_code_descriptions(
    make_claim, persona, login_client, who
):
    denial = deny(make_claim, "PD00000350")
    response = login_client(persona(who)).get(_url(denial))
    assert response.status_code == 200
    body = response.content.decode()
    assert "CO-50" in body
    assert "N115" in body
    assert "Make appeal letter" in body


def test_denial_page_is_404_at_another_location_and_audited(make_claim, persona, login_client):
    denial = deny(make_claim, "PD00000351")
    response = login_client(persona("outsider")).get(_url(denial))
    assert response.status_code == 404
    assert AuditEvent.objects.filter(event="denial.view", outcome=Outcome.DENIED).exists()


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("assign", {"owner": "none"}),
        ("status", {"to_status": "in_progress"}),
        ("notes", {"text": "Called."}),
        ("appeal", {"argument": "Pay it."}),
        ("resubmit", {"note": ""}),
    ],
)
def test_front_desk_gets_403_on_every_action(make_claim, persona, login_client, action, data):
    denial = deny(make_claim, "PD00000352")
    response = login_client(persona("frontdesk")).post(_url(denial, action), data)
    assert response.status_code == 403
    denial.refresh_from_db()
    assert denial.status == DenialStatus.OPEN


@pytest.mark.parametrize("action", ["assign", "status", "notes", "appeal", "resubmit"])
def test_outsider_gets_404_on_every_action(make_claim, persona, login_client, action):
    denial = deny(make_claim, "PD00000353")
    response = login_client(persona("outsider")).post(_url(denial, action), {})
    assert response.status_code == 404


def test_medical_director_adds_a_note(make_claim, persona, login_client):
    denial = deny(make_claim, "PD00000354")
    client = login_client(persona("meddirector"))
    response = client.post(_url(denial, "notes"), {"text": "Reviewed the chart."}, follow=True)
    assert response.status_code == 200
    assert "Reviewed the chart." in response.content.decode()


def test_write_off_without_reason_shows_the_error_next_to_the_field(
    make_claim, persona, login_client
):
    denial = deny(make_claim, "PD00000355")
    response = login_client(persona("billing")).post(
        _url(denial, "status"), {"to_status": "written_off", "reason": ""}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "error-summary" in body
    assert "Say why the denial is written off." in body
    assert 'id="id_reason_error"' in body


def test_appeal_downloads_the_pdf_and_marks_the_claim_appealed(make_claim, persona, login_client):
    # given
    denial = deny(make_claim, "PD00000356")
    client = login_client(persona("billing"))
    # when
    response = client.post(_url(denial, "appeal"), {"argument": "Authorization was on file."})
    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    denial.claim.refresh_from_db()
    assert denial.claim.status == ClaimStatus.APPEALED
    letter = denial.appeal_letters.get()
    again = client.get(_url(denial, f"letters/{letter.public_id}"))
    assert again.content.startswith(b"%PDF")


def test_appeal_without_argument_names_the_field(make_claim, persona, login_client):
    denial = deny(make_claim, "PD00000357")
    response = login_client(persona("billing")).post(_url(denial, "appeal"), {"argument": ""})
    assert response.status_code == 400
    assert "Write why the claim should be paid." in response.content.decode()


def test_resubmit_from_the_page_creates_the_corrected_claim(make_claim, persona, login_client):
    denial = deny(make_claim, "PD00000358")
    response = login_client(persona("billing")).post(
        _url(denial, "resubmit"), {"note": "Corrected the modifier."}, follow=True
    )
    assert response.status_code == 200
    denial.refresh_from_db()
    assert denial.status == DenialStatus.RESUBMITTED
    assert denial.replacement_claim is not None
    assert denial.replacement_claim.patient_control_number in response.content.decode()
