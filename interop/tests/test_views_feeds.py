"""Calendar feed links: creating and revoking them, and who may."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from audit.models import AuditEvent
from core.models import Location
from interop.models import IcalFeedToken, hash_feed_token
from scheduling.models import Practitioner
from scheduling.tests.factories import PractitionerFactory

from .factories import FeedTokenFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("interop.tests.urls")]

Persona = Callable[[str], User]
LoginClient = Callable[[User], Client]


@pytest.fixture
def doctor(main_clinic: Location) -> Practitioner:
    return PractitionerFactory(given_name="Grace", family_name="Hopper", locations=[main_clinic])


def feeds_url() -> str:
    return reverse("interop:feeds")


def revoke_url(token: IcalFeedToken) -> str:
    return reverse("interop:feed_revoke", kwargs={"public_id": token.public_id})


@pytest.mark.parametrize("name", ["officeadmin", "officemanager", "psmanager", "sysadmin"])
def test_schedule_and_interface_managers_see_the_links(
    name: str, persona: Persona, login_client: LoginClient, doctor: Practitioner
) -> None:
    FeedTokenFactory(practitioner=doctor, hint="abcdef")
    response = login_client(persona(name)).get(feeds_url())
    assert response.status_code == 200
    assert "abcdef" in response.content.decode()


def test_creating_a_link_shows_the_secret_url_once(
    persona: Persona, login_client: LoginClient, doctor: Practitioner
) -> None:
    # given
    client = login_client(persona("officeadmin"))
    # when
    response = client.post(feeds_url(), {"practitioner": doctor.public_id, "detail": "initials"})
    # then
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    token = IcalFeedToken.objects.get()
    url = response.context["new_url"]
    raw = url.rsplit("/", 1)[1].removesuffix(".ics")
    assert url.startswith("http://testserver/interfaces/ical/")
    assert hash_feed_token(raw) == token.token_hash
    assert raw not in str(list(AuditEvent.objects.values_list("reason", "object_id")))
    assert client.get(feeds_url()).content.decode().count(raw) == 0


def test_the_form_names_a_missing_practitioner(
    persona: Persona, login_client: LoginClient, doctor: Practitioner
) -> None:
    response = login_client(persona("officeadmin")).post(feeds_url(), {"detail": "initials"})
    assert response.status_code == 200
    assert response.context["form"].errors["practitioner"] == [
        "Choose the practitioner whose appointments the link shows."
    ]
    assert "is-invalid" in response.content.decode()
    assert not IcalFeedToken.objects.exists()


def test_a_practitioner_of_another_location_cannot_be_chosen(
    persona: Persona, login_client: LoginClient, riverside: Location
) -> None:
    elsewhere = PractitionerFactory(locations=[riverside])
    response = login_client(persona("officeadmin")).post(
        feeds_url(), {"practitioner": elsewhere.public_id, "detail": "initials"}
    )
    assert response.context["form"].errors["practitioner"] == [
        "Choose a practitioner who works at one of your locations."
    ]
    assert not IcalFeedToken.objects.exists()


@pytest.mark.parametrize("name", ["frontdesk", "billing", "privacy"])
def test_other_roles_get_403(name: str, persona: Persona, login_client: LoginClient) -> None:
    client = login_client(persona(name))
    assert client.get(feeds_url()).status_code == 403
    assert client.post(feeds_url(), {}).status_code == 403


def test_anonymous_users_are_sent_to_sign_in(client: Client) -> None:
    response = client.get(feeds_url())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_the_links_page_refuses_put(persona: Persona, login_client: LoginClient) -> None:
    assert login_client(persona("officeadmin")).put(feeds_url()).status_code == 405


# --- revoke --------------------------------------------------------------------------------------


def test_revoking_a_link_stops_the_feed(
    persona: Persona, login_client: LoginClient, doctor: Practitioner
) -> None:
    # given
    token = FeedTokenFactory(practitioner=doctor, raw="secret-feed-token-123")
    feed = reverse("interop:ical_feed", kwargs={"token": "secret-feed-token-123"})
    assert Client().get(feed).status_code == 200
    # when
    response = login_client(persona("officeadmin")).post(revoke_url(token))
    # then
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert Client().get(feed).status_code == 404
    assert AuditEvent.objects.filter(event="ical.token_revoke").exists()


def test_revoking_another_locations_link_is_404(
    persona: Persona, login_client: LoginClient, riverside: Location
) -> None:
    token = FeedTokenFactory(practitioner=PractitionerFactory(locations=[riverside]))
    assert login_client(persona("officeadmin")).post(revoke_url(token)).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_revoking_needs_the_capability(
    persona: Persona, login_client: LoginClient, doctor: Practitioner
) -> None:
    token = FeedTokenFactory(practitioner=doctor)
    assert login_client(persona("frontdesk")).post(revoke_url(token)).status_code == 403


def test_revoking_needs_sign_in(client: Client, doctor: Practitioner) -> None:
    token = FeedTokenFactory(practitioner=doctor)
    response = client.post(revoke_url(token))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_revoking_refuses_get(
    persona: Persona, login_client: LoginClient, doctor: Practitioner
) -> None:
    token = FeedTokenFactory(practitioner=doctor)
    assert login_client(persona("officeadmin")).get(revoke_url(token)).status_code == 405
