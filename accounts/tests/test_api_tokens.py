"""Personal API tokens: the command, the tokens page, and bearer authentication."""

from __future__ import annotations

import hashlib
import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.models import ApiToken
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

TOKENS = reverse("accounts:tokens")
TOKEN_RE = re.compile(r"pdk_[A-Za-z0-9_-]{40,}")


def _audit_text() -> str:
    return json.dumps([model_to_dict(e) for e in AuditEvent.objects.all()], default=str)


def _bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


# --- manage.py create_api_token -----------------------------------------------------------------


def test_command_prints_the_token_once_and_stores_only_its_hash(frontdesk):
    out, err = StringIO(), StringIO()

    call_command("create_api_token", "frontdesk", "--name", "lab interface", stdout=out, stderr=err)

    raw = out.getvalue().strip()
    assert TOKEN_RE.fullmatch(raw)
    token = ApiToken.objects.get(user=frontdesk)
    assert token.name == "lab interface"
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in json.dumps(model_to_dict(token), default=str)
    assert raw not in err.getvalue()
    assert "shown this once" in err.getvalue()


def test_command_audits_the_creation_without_the_token(frontdesk):
    out = StringIO()
    call_command("create_api_token", "frontdesk", stdout=out, stderr=StringIO())

    event = AuditEvent.objects.get(event="auth.token_create")
    assert event.username == "manage.py"
    assert event.object_id == str(ApiToken.objects.get().public_id)
    assert out.getvalue().strip() not in _audit_text()


def test_command_names_an_unknown_user():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("create_api_token", "ghost", stdout=StringIO())


def test_command_refuses_a_user_whose_roles_do_not_allow_the_api(persona):
    persona("sysadmin")

    with pytest.raises(CommandError, match="do not allow API access"):
        call_command("create_api_token", "sysadmin", stdout=StringIO())
    assert not ApiToken.objects.exists()


# --- The tokens page ----------------------------------------------------------------------------


def test_tokens_page_lists_name_hint_dates_and_status(frontdesk, login_client):
    token, _ = services.api_token_create(actor=frontdesk, user=frontdesk, name="scheduling feed")
    old, _ = services.api_token_create(actor=frontdesk, user=frontdesk, name="old feed")
    services.api_token_revoke(actor=frontdesk, token=old)

    response = login_client(frontdesk).get(TOKENS)

    html = response.content.decode()
    assert response.status_code == 200
    assert "scheduling feed" in html
    assert f"<code>{token.hint}…</code>" in html
    assert "never" in html
    assert '<span class="badge text-bg-success">active</span>' in html
    assert "revoked" in html
    assert response.headers["Cache-Control"].startswith("max-age=0")


def test_creating_a_token_shows_it_once(frontdesk, login_client):
    # given the tokens page
    client = login_client(frontdesk)

    # when the user creates a token
    created = client.post(TOKENS, {"name": "billing export"})

    # then the response shows it, and it is never shown again
    raw = TOKEN_RE.search(created.content.decode()).group(0)
    assert (
        ApiToken.objects.get(user=frontdesk).token_hash == hashlib.sha256(raw.encode()).hexdigest()
    )
    assert raw not in client.get(TOKENS).content.decode()
    assert raw not in _audit_text()
    assert AuditEvent.objects.filter(event="auth.token_create", user=frontdesk).count() == 1


def test_creating_a_token_without_a_name_says_which_field(frontdesk, login_client):
    response = login_client(frontdesk).post(TOKENS, {"name": "   "})

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_name_error"' in html
    assert "is-invalid" in html
    assert not ApiToken.objects.exists()


def test_user_without_api_capability_cannot_create_tokens(persona, login_client):
    sysadmin = persona("sysadmin")
    client = login_client(sysadmin)

    page = client.get(TOKENS)
    response = client.post(TOKENS, {"name": "try"})

    assert "do not include API access" in page.content.decode()
    assert 'name="name"' not in page.content.decode()
    assert response.status_code == 403
    assert not ApiToken.objects.exists()


def test_revoking_a_token_stops_it_at_once(frontdesk, login_client):
    # given a working token
    token, raw = services.api_token_create(actor=frontdesk, user=frontdesk, name="feed")
    assert Client().get(TOKENS, headers=_bearer(raw)).status_code == 200

    # when its owner revokes it
    response = login_client(frontdesk).post(
        reverse("accounts:token_revoke", args=[token.public_id])
    )

    # then it is refused and the revocation is audited
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert Client().get(TOKENS, headers=_bearer(raw)).status_code == 401
    assert AuditEvent.objects.filter(event="auth.token_revoke", user=frontdesk).count() == 1


def test_revoking_someone_elses_token_is_404(frontdesk, persona, login_client):
    other = persona("billing")
    token, _ = services.api_token_create(actor=other, user=other, name="theirs")

    response = login_client(frontdesk).post(
        reverse("accounts:token_revoke", args=[token.public_id])
    )

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_revoking_needs_post(frontdesk, login_client):
    token, _ = services.api_token_create(actor=frontdesk, user=frontdesk, name="feed")

    response = login_client(frontdesk).get(reverse("accounts:token_revoke", args=[token.public_id]))

    assert response.status_code == 405


def test_tokens_page_needs_a_signed_in_user(client):
    response = client.get(TOKENS)

    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


def test_tokens_page_refuses_other_methods(frontdesk, login_client):
    assert login_client(frontdesk).delete(TOKENS).status_code == 405


# --- Bearer authentication ----------------------------------------------------------------------


def test_a_valid_bearer_token_opens_a_login_required_page(frontdesk):
    token, raw = services.api_token_create(actor=frontdesk, user=frontdesk, name="feed")

    response = Client().get(TOKENS, headers=_bearer(raw))

    assert response.status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_an_unknown_bearer_token_gets_401_problem_json(frontdesk):
    response = Client().get(TOKENS, headers=_bearer("pdk_" + "x" * 43))

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.json()["status"] == 401
    assert AuditEvent.objects.filter(event="auth.token_invalid", outcome="failure").count() == 1


def test_a_revoked_bearer_token_gets_401(frontdesk):
    token, raw = services.api_token_create(actor=frontdesk, user=frontdesk, name="feed")
    services.api_token_revoke(actor=frontdesk, token=token)

    response = Client().get(TOKENS, headers=_bearer(raw))

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"


def test_a_token_of_a_deactivated_user_gets_401(frontdesk):
    _, raw = services.api_token_create(actor=frontdesk, user=frontdesk, name="feed")
    frontdesk.is_active = False
    frontdesk.save()

    assert Client().get(TOKENS, headers=_bearer(raw)).status_code == 401


def test_a_token_of_a_user_who_lost_api_access_gets_401(frontdesk, persona):
    from accounts.models import Role

    sysadmin = persona("sysadmin")
    _, raw = services.api_token_create(actor=frontdesk, user=frontdesk, name="feed")
    services.user_set_roles(
        actor=sysadmin, user=frontdesk, roles=[Role.objects.get(slug="privacy_officer")]
    )

    response = Client().get(TOKENS, headers=_bearer(raw))

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    event = AuditEvent.objects.get(event="auth.token_invalid")
    assert (event.username, event.outcome) == ("frontdesk", "failure")


def test_a_bearer_token_needs_no_two_factor_step(officemanager):
    _, raw = services.api_token_create(actor=officemanager, user=officemanager, name="feed")

    assert Client().get(TOKENS, headers=_bearer(raw)).status_code == 200


def test_bearer_tokens_never_reach_the_audit_trail(frontdesk):
    # given good, revoked and unknown tokens used
    token, raw = services.api_token_create(actor=frontdesk, user=frontdesk, name="feed")
    Client().get(TOKENS, headers=_bearer(raw))
    services.api_token_revoke(actor=frontdesk, token=token)
    Client().get(TOKENS, headers=_bearer(raw))
    unknown = "pdk_" + "y" * 43
    Client().get(TOKENS, headers=_bearer(unknown))

    # then neither token, nor any part past its prefix, is in the trail
    text = _audit_text()
    assert raw not in text
    assert raw[4:12] not in text
    assert unknown not in text
