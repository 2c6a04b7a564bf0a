"""University sign-in against a real OpenID provider process, in a browser: the button, the
redirect, the provider's form, the callback, the session; and the refusals."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from courses.models import Enrollment, Semester
from courses.roster import roster_import
from tests.accounts.conftest import Provider


def sign_in_at_provider(tab: Page, live_server: Any, sub: str) -> None:
    tab.goto(f"{live_server.url}/accounts/login/")
    tab.get_by_role("link", name="Sign in with TUM Login").click()
    # The provider's own authorization form, asked for with state, nonce and PKCE.
    expect(tab.get_by_role("heading", name="Authorize Client")).to_be_visible()
    asked = parse_qs(urlparse(tab.url).query)
    assert {"state", "nonce", "code_challenge"} <= set(asked)
    assert asked["code_challenge_method"] == ["S256"]
    tab.get_by_placeholder("sub").fill(sub)
    tab.get_by_role("button", name="Authorize").click()


def test_it_signs_in_a_roster_account_whatever_the_letter_case_of_the_email(
    tab: Page, live_server: Any, oidc_provider: Provider, oidc_settings: Any, semester: Semester
) -> None:
    roster_import(semester, "username,email\nada,Ada.Lovelace@Uni.example\n")
    oidc_provider.user_set(
        "ada-sub", email="ada.lovelace@UNI.EXAMPLE", email_verified=True, name="Ada"
    )

    sign_in_at_provider(tab, live_server, "ada-sub")

    expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
    expect(tab.get_by_role("link", name="ada", exact=True)).to_be_visible()
    expect(tab.get_by_role("heading", name="My courses")).to_be_visible()
    handle = Enrollment.objects.get(user__username="ada").handle
    expect(tab.get_by_text(f"You take part as {handle}")).to_be_visible()
    assert User.objects.count() == 1


def test_it_refuses_an_unknown_email_and_names_it(
    tab: Page, live_server: Any, oidc_provider: Provider, oidc_settings: Any, semester: Semester
) -> None:
    oidc_provider.user_set("grace-sub", email="grace@uni.example", email_verified=True)

    sign_in_at_provider(tab, live_server, "grace-sub")

    expect(tab.get_by_text("No account here uses grace@uni.example")).to_be_visible()
    expect(tab.get_by_text("ask the course staff", exact=False)).to_be_visible()
    expect(tab.get_by_role("button", name="Sign out")).to_have_count(0)
    assert not User.objects.exists()


def test_it_refuses_an_unverified_email(
    tab: Page, live_server: Any, oidc_provider: Provider, oidc_settings: Any, semester: Semester
) -> None:
    roster_import(semester, "username,email\nalan,alan@uni.example\n")
    oidc_provider.user_set("alan-sub", email="alan@uni.example", email_verified=False)

    sign_in_at_provider(tab, live_server, "alan-sub")

    expect(tab.get_by_text("has not verified your email address alan@uni.example")).to_be_visible()
    expect(tab.get_by_role("button", name="Sign out")).to_have_count(0)


def test_it_creates_an_account_for_an_unknown_email_only_when_told_to(
    tab: Page, live_server: Any, oidc_provider: Provider, oidc_settings: Any, semester: Semester
) -> None:
    oidc_settings.OIDC_CREATE_USERS = True
    oidc_provider.user_set("kurt-sub", email="Kurt@Uni.example", email_verified=True)

    sign_in_at_provider(tab, live_server, "kurt-sub")
    expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
    tab.get_by_role("button", name="Sign out").click()
    sign_in_at_provider(tab, live_server, "kurt-sub")

    expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
    assert list(User.objects.values_list("email", flat=True)) == ["Kurt@Uni.example"]


def test_it_says_so_when_the_student_denies_at_the_provider(
    tab: Page, live_server: Any, oidc_provider: Provider, oidc_settings: Any, semester: Semester
) -> None:
    tab.goto(f"{live_server.url}/accounts/login/")
    tab.get_by_role("link", name="Sign in with TUM Login").click()
    tab.get_by_role("button", name="Deny").click()

    expect(tab.get_by_text("Sign-in with TUM Login was cancelled")).to_be_visible()
    expect(tab.get_by_role("button", name="Sign out")).to_have_count(0)


def test_refusals_from_one_address_lock_no_one_out_of_single_sign_on(
    tab: Page, live_server: Any, oidc_provider: Provider, oidc_settings: Any, semester: Semester
) -> None:
    """A lecture hall behind one address: students not on a roster yet are refused, again and
    again, past the sign-in failure limit; an enrolled student from the same address still
    signs in. Throttling is for passwords, which single sign-on does not take here."""
    oidc_settings.AXES_FAILURE_LIMIT = 2
    roster_import(semester, "username,email\nada,ada@uni.example\n")
    oidc_provider.user_set("ada-sub", email="ada@uni.example", email_verified=True)
    for n in range(3):
        oidc_provider.user_set(f"guest-{n}", email=f"guest{n}@uni.example", email_verified=True)
        sign_in_at_provider(tab, live_server, f"guest-{n}")
        expect(tab.get_by_text(f"No account here uses guest{n}@uni.example")).to_be_visible()

    sign_in_at_provider(tab, live_server, "ada-sub")

    expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
    expect(tab.get_by_role("link", name="ada", exact=True)).to_be_visible()
