"""Sign-in follows the provider's (issuer, sub), against a real OpenID provider process in a
browser: the first sign-in links it, a changed email keeps the account, a recycled email does
not take it over, and staff link theirs only while signed in."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
from django.contrib.auth.models import User
from django.test import Client
from playwright.sync_api import Page, expect

from accounts.models import ExternalIdentity
from courses.models import Semester
from courses.roster import roster_import
from tests.accounts.conftest import Provider
from tests.accounts.test_oidc_sign_in import sign_in_at_provider


def sign_out(tab: Page) -> None:
    tab.get_by_role("button", name="Sign out").click()
    expect(tab.get_by_role("button", name="Sign out")).to_have_count(0)


def test_it_links_the_first_sign_in_and_keeps_the_account_when_the_email_changes(
    tab: Page, live_server: Any, oidc_provider: Provider, oidc_settings: Any, semester: Semester
) -> None:
    roster_import(semester, "username,email\nada,ada@uni.example\n")
    oidc_provider.user_set("ada-sub", email="ada@uni.example", email_verified=True)

    sign_in_at_provider(tab, live_server, "ada-sub")
    expect(tab.get_by_role("link", name="ada", exact=True)).to_be_visible()
    identity = ExternalIdentity.objects.get()
    assert (identity.user.username, identity.issuer, identity.subject) == (
        "ada",
        oidc_provider.url,
        "ada-sub",
    )
    sign_out(tab)

    # She married and the university changed her address; the roster still has the old one.
    oidc_provider.user_set("ada-sub", email="ada.lovelace@uni.example", email_verified=True)
    sign_in_at_provider(tab, live_server, "ada-sub")

    expect(tab.get_by_role("link", name="ada", exact=True)).to_be_visible()
    assert User.objects.count() == 1


def test_it_does_not_let_a_recycled_email_take_over_a_linked_account(
    tab: Page, live_server: Any, oidc_provider: Provider, oidc_settings: Any, semester: Semester
) -> None:
    roster_import(semester, "username,email\nada,ada@uni.example\n")
    oidc_provider.user_set("ada-sub", email="ada@uni.example", email_verified=True)
    sign_in_at_provider(tab, live_server, "ada-sub")
    expect(tab.get_by_role("link", name="ada", exact=True)).to_be_visible()
    sign_out(tab)

    # Ada left; the university gave her address to a newcomer with an account of their own.
    oidc_provider.user_set("ada-sub", email="ada.alumna@uni.example", email_verified=True)
    oidc_provider.user_set("newcomer-sub", email="ada@uni.example", email_verified=True)
    sign_in_at_provider(tab, live_server, "newcomer-sub")

    expect(tab.get_by_text("is linked to another TUM Login account")).to_be_visible()
    expect(tab.get_by_role("button", name="Sign out")).to_have_count(0)
    assert list(ExternalIdentity.objects.values_list("subject", flat=True)) == ["ada-sub"]


def test_it_links_a_staff_account_only_from_its_profile_page(
    tab: Page, live_server: Any, oidc_provider: Provider, oidc_settings: Any, semester: Semester
) -> None:
    User.objects.create_user("prof", "prof@uni.example", "prof password", is_staff=True)
    oidc_provider.user_set("prof-sub", email="prof@uni.example", email_verified=True)

    sign_in_at_provider(tab, live_server, "prof-sub")
    expect(tab.get_by_text("belongs to a staff account")).to_be_visible()
    expect(tab.get_by_text('"Link my university account" on your profile page')).to_be_visible()
    expect(tab.get_by_role("button", name="Sign out")).to_have_count(0)
    assert not ExternalIdentity.objects.exists()

    tab.fill("#id_username", "prof")
    tab.fill("#id_password", "prof password")
    tab.get_by_role("button", name="Sign in").click()
    tab.goto(f"{live_server.url}/accounts/profile/")
    tab.get_by_role("button", name="Link my university account").click()
    expect(tab.get_by_role("heading", name="Authorize Client")).to_be_visible()
    tab.get_by_placeholder("sub").fill("prof-sub")
    tab.get_by_role("button", name="Authorize").click()

    expect(tab.get_by_text("Your TUM Login account is now linked")).to_be_visible()
    assert tab.url == f"{live_server.url}/accounts/profile/"
    identity = ExternalIdentity.objects.get()
    assert (identity.user.username, identity.subject) == ("prof", "prof-sub")
    assert identity.method == ExternalIdentity.Method.SIGNED_IN
    sign_out(tab)

    sign_in_at_provider(tab, live_server, "prof-sub")
    expect(tab.get_by_role("link", name="prof", exact=True)).to_be_visible()


def test_it_ignores_a_code_presented_to_the_sign_in_page(
    live_server: Any, oidc_provider: Provider, oidc_settings: Any, semester: Semester
) -> None:
    roster_import(semester, "username,email\nada,ada@uni.example\n")
    oidc_provider.user_set("ada-sub", email="ada@uni.example", email_verified=True)
    client = Client()
    # A code the provider issued for Ada (leaked, say), without this site's state or PKCE.
    issued = requests.post(
        f"{oidc_provider.url}/oauth2/authorize",
        params={
            "client_id": oidc_settings.OIDC_CLIENT_ID,
            "redirect_uri": "http://testserver/accounts/oidc/callback/",
            "response_type": "code",
            "scope": "openid email",
            "state": "chosen",
            "nonce": "chosen",
        },
        data={"sub": "ada-sub"},
        allow_redirects=False,
        timeout=10,
    )
    [code] = parse_qs(urlparse(issued.headers["Location"]).query)["code"]

    response = client.post(
        f"/accounts/login/?code={code}&state=chosen", {"username": "x", "password": "y"}
    )

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session
