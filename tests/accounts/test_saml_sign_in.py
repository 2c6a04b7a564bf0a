"""University sign-in with SAML 2.0 against a real IdP process (pysaml2's server, signing with
xmlsec1; ``tests.accounts.saml_idp``), in a browser: the button, the IdP's form, the response
posted back to the assertion consumer service, the session; and the refusals of responses that
are unsigned, tampered with, signed with another key, expired, unsolicited or replayed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from accounts.models import ExternalIdentity
from courses.models import Enrollment, Semester
from courses.roster import roster_import
from tests.accounts.conftest import SamlIdP


def answer_at_idp(
    tab: Page,
    *,
    email: str,
    subject: str,
    mode: str = "both",
    nameid: str = "persistent",
    tamper_email: str = "",
) -> str:
    """Fills the IdP's form and posts its response back; returns the response posted."""
    expect(tab.get_by_role("heading", name="Test university sign-in")).to_be_visible()
    tab.get_by_role("textbox", name="Email", exact=True).fill(email)
    tab.get_by_role("textbox", name="Subject", exact=True).fill(subject)
    tab.get_by_role("combobox", name="NameID format").select_option(nameid)
    tab.get_by_role("combobox", name="Mode").select_option(mode)
    tab.get_by_role("textbox", name="Tampered email").fill(tamper_email)
    tab.get_by_role("button", name="Sign in").click()
    response = tab.locator("input[name=SAMLResponse]").get_attribute("value") or ""
    tab.get_by_role("button", name="Continue").click()
    return response


def sign_in_at_idp(
    tab: Page,
    live_server: Any,
    *,
    email: str,
    subject: str,
    mode: str = "both",
    nameid: str = "persistent",
    tamper_email: str = "",
) -> str:
    """Through the sign-in page's button and the IdP's form; returns the response posted."""
    tab.goto(f"{live_server.url}/accounts/login/")
    tab.get_by_role("link", name="Sign in with Uni Login").click()
    return answer_at_idp(
        tab, email=email, subject=subject, mode=mode, nameid=nameid, tamper_email=tamper_email
    )


@pytest.fixture
def refusals(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """What the site logs about refused responses (the ``accounts`` loggers do not propagate)."""
    logger = logging.getLogger("accounts.saml")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


def expect_refused(tab: Page) -> None:
    expect(tab.get_by_role("heading", name="Sign-in with Uni Login failed")).to_be_visible()
    expect(tab.get_by_role("button", name="Sign out")).to_have_count(0)


def test_it_signs_in_a_roster_account_whatever_the_letter_case_of_the_email(
    tab: Page, live_server: Any, saml_settings: Any, semester: Semester
) -> None:
    roster_import(semester, "username,email\nada,Ada.Lovelace@Uni.example\n")

    # Only the assertion is signed: that is enough.
    sign_in_at_idp(
        tab, live_server, email="ada.lovelace@UNI.EXAMPLE", subject="ada-id", mode="assertion"
    )

    expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
    expect(tab.get_by_role("link", name="ada", exact=True)).to_be_visible()
    handle = Enrollment.objects.get(user__username="ada").handle
    expect(tab.get_by_text(f"You take part as {handle}")).to_be_visible()
    identity = ExternalIdentity.objects.get()
    assert (identity.user.username, identity.subject) == ("ada", "ada-id")
    assert identity.issuer.endswith("/metadata")
    assert identity.method == ExternalIdentity.Method.EMAIL

    # From now on the link counts, whatever email the IdP sends.
    tab.get_by_role("button", name="Sign out").click()
    sign_in_at_idp(tab, live_server, email="ada@elsewhere.example", subject="ada-id")
    expect(tab.get_by_role("link", name="ada", exact=True)).to_be_visible()
    assert User.objects.count() == 1


def test_it_refuses_an_unknown_email_and_names_it(
    tab: Page, live_server: Any, saml_settings: Any, semester: Semester
) -> None:
    posted = sign_in_at_idp(tab, live_server, email="grace@uni.example", subject="grace-id")

    expect_refused(tab)
    expect(tab.get_by_text("No account here uses grace@uni.example")).to_be_visible()
    assert not User.objects.exists()
    assert not ExternalIdentity.objects.exists()
    # Not a password's failure: django-axes neither counts it nor keeps the response (personal
    # data); a hall of students not on a roster yet locks nobody out (test_oidc_sign_in.py).
    assert not AccessAttempt.objects.exists()
    assert posted[:40] not in tab.content()


def test_it_creates_an_account_for_an_unknown_email_only_when_told_to(
    tab: Page, live_server: Any, saml_settings: Any, semester: Semester
) -> None:
    saml_settings.SAML_CREATE_USERS = True

    # A transient NameID: the person is their eduPersonPrincipalName; only the response is signed.
    sign_in_at_idp(
        tab,
        live_server,
        email="Kurt@Uni.example",
        subject="kurt@uni.example",
        nameid="transient",
        mode="response",
    )
    expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
    tab.get_by_role("button", name="Sign out").click()
    sign_in_at_idp(
        tab, live_server, email="Kurt@Uni.example", subject="kurt@uni.example", nameid="transient"
    )

    expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
    assert list(User.objects.values_list("email", flat=True)) == ["Kurt@Uni.example"]
    assert ExternalIdentity.objects.get().subject == "kurt@uni.example"


def test_it_never_links_a_staff_account_by_email(
    tab: Page, live_server: Any, saml_settings: Any, semester: Semester
) -> None:
    User.objects.create_user("prof", "prof@uni.example", "pw-prof-123", is_staff=True)

    sign_in_at_idp(tab, live_server, email="prof@uni.example", subject="prof-id")

    expect_refused(tab)
    expect(tab.get_by_text("prof@uni.example belongs to a staff account")).to_be_visible()
    assert not ExternalIdentity.objects.exists()


def test_staff_link_their_account_from_the_profile_page(
    tab: Page, live_server: Any, saml_settings: Any, semester: Semester
) -> None:
    User.objects.create_user("prof", "prof@uni.example", "pw-prof-123", is_staff=True)
    tab.goto(f"{live_server.url}/accounts/login/")
    tab.get_by_label("Username").fill("prof")
    tab.get_by_label("Password").fill("pw-prof-123")
    tab.get_by_role("button", name="Sign in", exact=True).click()
    tab.goto(f"{live_server.url}/accounts/profile/")

    tab.get_by_role("button", name="Link my university account").click()
    answer_at_idp(tab, email="prof@uni.example", subject="prof-id")

    expect(tab.get_by_text("Your Uni Login account is now linked")).to_be_visible()
    expect(tab.get_by_text("Your account is linked to your Uni Login account")).to_be_visible()
    identity = ExternalIdentity.objects.get()
    assert (identity.user.username, identity.method) == ("prof", "signed_in")
    tab.get_by_role("button", name="Sign out").click()
    sign_in_at_idp(tab, live_server, email="whatever@uni.example", subject="prof-id")
    expect(tab.get_by_role("link", name="prof", exact=True)).to_be_visible()


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("unsigned", "Neither the response nor the assertions are signed"),
        ("tampered", "SignatureError('Failed to verify signature')"),
        ("other-key", "SignatureError('Failed to verify signature')"),
        ("expired", "VerificationError('Condition not OK')"),
        ("unsolicited", "UnsolicitedResponse"),
    ],
    ids=["unsigned", "tampered", "other-key", "expired", "unsolicited"],
)
def test_it_refuses_a_response_it_cannot_trust(
    tab: Page,
    live_server: Any,
    saml_settings: Any,
    semester: Semester,
    refusals: pytest.LogCaptureFixture,
    mode: str,
    why: str,
) -> None:
    roster_import(semester, "username,email\nada,ada@uni.example\n")

    # Tampered: grace's signed response, her email changed to ada's after signing.
    sign_in_at_idp(
        tab,
        live_server,
        email="ada@uni.example" if mode != "tampered" else "grace@uni.example",
        tamper_email="ada@uni.example",
        subject="ada-id",
        mode=mode,
    )

    expect_refused(tab)
    expect(tab.get_by_text("could not be accepted")).to_be_visible()
    # The details are in the log, not on the page.
    expect(tab.get_by_text(why.split("(")[0])).to_have_count(0)
    assert why in refusals.text
    assert not ExternalIdentity.objects.exists()
    tab.goto(f"{live_server.url}/accounts/profile/")
    expect(tab.get_by_role("heading", name="Sign in")).to_be_visible()


def test_it_refuses_a_replayed_response(
    tab: Page,
    live_server: Any,
    saml_settings: Any,
    saml_idp: SamlIdP,
    semester: Semester,
    refusals: pytest.LogCaptureFixture,
) -> None:
    roster_import(semester, "username,email\nada,ada@uni.example\n")
    sign_in_at_idp(tab, live_server, email="ada@uni.example", subject="ada-id")
    expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
    tab.get_by_role("button", name="Sign out").click()

    # The captured response again, while a new sign-in of this browser is outstanding.
    tab.goto(f"{live_server.url}/accounts/login/")
    tab.get_by_role("link", name="Sign in with Uni Login").click()
    expect(tab.get_by_role("heading", name="Test university sign-in")).to_be_visible()
    tab.goto(f"{saml_idp.url}/replay")
    tab.get_by_role("button", name="Continue").click()

    expect_refused(tab)
    assert "UnsolicitedResponse" in refusals.text
    tab.goto(f"{live_server.url}/accounts/profile/")
    expect(tab.get_by_role("heading", name="Sign in")).to_be_visible()
