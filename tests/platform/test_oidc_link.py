"""``POST /accounts/oidc/link/`` and the profile's "Link my university account": the signed-in
owner links their account at the provider (the only way for staff)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from accounts.models import ExternalIdentity
from tests.platform.conftest import OIDC_ISSUER as ISSUER


def test_it_offers_the_link_on_the_profile_page(client, staff, oidc_on):
    client.force_login(staff)

    page = client.get("/accounts/profile/").content.decode()

    assert "Link my university account" in page
    assert 'action="/accounts/oidc/link/"' in page


def test_it_says_when_the_account_is_linked(client, staff, oidc_on):
    ExternalIdentity.objects.create(
        user=staff, issuer=ISSUER, subject="s-1", method=ExternalIdentity.Method.SIGNED_IN
    )
    client.force_login(staff)

    page = client.get("/accounts/profile/").content.decode()

    assert "Your account is linked to your TUM Login account" in page
    assert "Link my university account" not in page


def test_it_offers_nothing_when_oidc_is_not_configured(client, staff, settings):
    settings.OIDC_ISSUER = ""
    client.force_login(staff)

    assert "Link my university account" not in client.get("/accounts/profile/").content.decode()
    assert client.post("/accounts/oidc/link/").status_code == 404


def test_it_starts_the_providers_flow_marked_as_linking_this_user(client, staff, oidc_on):
    client.force_login(staff)

    response = client.post("/accounts/oidc/link/")

    assert response.status_code == 302
    assert response["Location"].startswith(f"{ISSUER}/authorize?")
    [state] = parse_qs(urlparse(response["Location"]).query)["state"]
    assert client.session["oidc_states"][state]["link_user"] == staff.pk
    assert client.session["oidc_login_next"] == "/accounts/profile/"


@pytest.mark.parametrize("method", ["get"])
def test_it_starts_only_on_a_post(client, staff, oidc_on, method):
    client.force_login(staff)

    assert getattr(client, method)("/accounts/oidc/link/").status_code == 405


def directives(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header as {directive: sources}, whatever their order."""
    parts = (directive.split() for directive in policy.split(";"))
    return {words[0]: words[1:] for words in parts if words}


def test_it_sends_anonymous_visitors_to_sign_in(client, db, oidc_on):
    response = client.post("/accounts/oidc/link/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_lets_the_link_form_go_to_the_provider_under_the_pages_csp(client, staff, oidc_on):
    client.force_login(staff)

    response = client.get("/accounts/profile/")

    assert response.status_code == 200
    assert directives(response["Content-Security-Policy"])["form-action"] == ["'self'", ISSUER]


def test_it_keeps_form_action_to_this_site_when_oidc_is_not_configured(client, staff, settings):
    settings.OIDC_ISSUER = ""
    client.force_login(staff)

    response = client.get("/accounts/profile/")

    assert response.status_code == 200
    assert directives(response["Content-Security-Policy"])["form-action"] == ["'self'"]


def test_it_returns_to_the_profile_when_linking_is_cancelled(client, staff, oidc_on):
    client.force_login(staff)
    to_provider = client.post("/accounts/oidc/link/")
    [state] = parse_qs(urlparse(to_provider["Location"]).query)["state"]

    response = client.get(
        f"/accounts/oidc/callback/?error=access_denied&state={state}", follow=True
    )

    assert response.redirect_chain == [("/accounts/profile/", 302)]
    assert "Linking your account with TUM Login was cancelled" in response.content.decode()
    assert "_auth_user_id" in client.session
