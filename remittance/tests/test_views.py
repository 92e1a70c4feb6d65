"""Remittance screens: the files received and the unmatched queue (access, audit, queries)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import AuditEvent, Outcome
from billing.x12.edi835_samples import SampleClaim, SampleLine, SampleRemittance, render_835
from remittance.services import remittance_ingest

pytestmark = pytest.mark.django_db

FILES = "/remittances/"
UNMATCHED = "/remittances/unmatched/"


def posted_file(pcn: str = "NOBODY", trace: str = "T1") -> None:
    line = SampleLine("99213", Decimal("100.00"), Decimal("80.00"), (("CO", "45", Decimal(20)),))
    claim = SampleClaim(pcn, (line,), patient_last="ZEDEKIAH", member_id="XMEMBER9")
    data = render_835(SampleRemittance(claims=[claim], trace=trace)).encode()
    remittance_ingest(actor=None, data=data, file_name=f"{trace}.835")


def test_billing_specialist_sees_the_files_received(
    persona, login_client, django_assert_max_num_queries
):
    # given
    posted_file(trace="T1")
    posted_file(pcn="OTHER", trace="T2")
    client = login_client(persona("billing"))
    # when
    with django_assert_max_num_queries(12):
        response = client.get(FILES)
    # then
    assert response.status_code == 200
    assert b"T1.835" in response.content
    assert b"T2.835" in response.content
    assert b"ZEDEKIAH" not in response.content


def test_file_list_query_count_does_not_grow_with_files(
    persona, login_client, django_assert_max_num_queries
):
    for number in range(6):
        posted_file(pcn=f"P{number}", trace=f"T{number}")
    client = login_client(persona("billing"))
    with django_assert_max_num_queries(12):
        assert client.get(FILES).status_code == 200


def test_a_role_without_billing_access_gets_403_on_the_file_list(persona, login_client):
    client = login_client(persona("privacy"))
    response = client.get(FILES)
    assert response.status_code == 403
    assert AuditEvent.objects.filter(
        event="auth.permission_denied", outcome=Outcome.DENIED, object_id="remittance.file_list"
    ).exists()


def test_anonymous_is_sent_to_sign_in(client):
    for url in (FILES, UNMATCHED):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("url", [FILES, UNMATCHED])
def test_post_is_not_allowed(persona, login_client, url):
    assert login_client(persona("billing")).post(url).status_code == 405


def test_billing_specialist_works_the_unmatched_queue_and_the_read_is_audited(
    persona, login_client, django_assert_max_num_queries
):
    # given
    posted_file(trace="T1")
    posted_file(pcn="OTHER", trace="T2")
    user = persona("billing")
    client = login_client(user)
    # when
    with django_assert_max_num_queries(14):
        response = client.get(UNMATCHED)
    # then
    assert response.status_code == 200
    assert response.content.count(b"ZEDEKIAH") == 2
    assert b"XMEMBER9" in response.content
    event = AuditEvent.objects.get(event="remittance.unmatched_list")
    assert (event.user_id, event.action, event.reason) == (user.pk, "query", "2 rows")
    assert "ZEDEKIAH" not in str(event.fields)


@pytest.mark.parametrize("name", ["frontdesk", "outsider", "officemanager"])
def test_roles_without_remittance_work_get_403_on_the_unmatched_queue(persona, login_client, name):
    posted_file()
    response = login_client(persona(name)).get(UNMATCHED)
    assert response.status_code == 403
    assert b"ZEDEKIAH" not in response.content
    assert not AuditEvent.objects.filter(event="remittance.unmatched_list").exists()
    assert AuditEvent.objects.filter(
        event="auth.permission_denied", object_id="remittance.unmatched_list"
    ).exists()


def test_file_list_offers_the_upload_only_to_those_who_post_remittances(persona, login_client):
    upload = reverse("remittance:upload").encode()
    assert upload in login_client(persona("billing")).get(FILES).content
    officemanager_page = login_client(persona("officemanager")).get(FILES)
    assert officemanager_page.status_code == 200
    assert upload not in officemanager_page.content
