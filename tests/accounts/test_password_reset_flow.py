"""The done-when of password reset: a roster account (no usable password) asks for a link on
the sign-in page, reads it from the file-based email backend, sets a password and signs in;
the link then fails. An unknown address gets the same page and no email."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from courses.models import Enrollment, Semester
from courses.roster import roster_import
from tests.accounts.conftest import Worker, link_in, mails

PASSWORD = "correct horse battery staple"


def ask_for_a_link(tab: Page, live_server: Any, email: str) -> None:
    tab.goto(f"{live_server.url}/accounts/login/")
    tab.get_by_role("link", name="Forgot your password?").click()
    tab.get_by_label("Email").fill(email)
    tab.get_by_role("button", name="Send the link").click()


def test_it_lets_a_roster_account_set_its_password_by_email(
    tab: Page, live_server: Any, accounts_settings: Any, semester: Semester, worker: Worker
) -> None:
    roster_import(semester, "username,email\nada,Ada@Uni.example\n")

    ask_for_a_link(tab, live_server, "ada@uni.example")
    expect(tab.get_by_role("heading", name="Check your email")).to_be_visible()
    worker.run()
    [message] = mails(accounts_settings.EMAIL_FILE_PATH)
    link = link_in(message, "/accounts/reset/")
    tab.goto(link)
    tab.get_by_label("New password", exact=True).fill(PASSWORD)
    tab.get_by_label("New password confirmation").fill(PASSWORD)
    tab.get_by_role("button", name="Set password").click()
    tab.get_by_role("link", name="Sign in").last.click()
    tab.fill("#id_username", "ada")
    tab.fill("#id_password", PASSWORD)
    tab.get_by_role("button", name="Sign in").click()

    expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
    expect(tab.get_by_role("heading", name="My courses")).to_be_visible()
    handle = Enrollment.objects.get(user__username="ada").handle
    expect(tab.get_by_text(f"You take part as {handle}")).to_be_visible()
    tab.goto(link)
    expect(tab.get_by_role("heading", name="This link no longer works")).to_be_visible()


def test_it_answers_an_unknown_address_with_the_same_page_and_sends_nothing(
    tab: Page, live_server: Any, accounts_settings: Any, semester: Semester, worker: Worker
) -> None:
    ask_for_a_link(tab, live_server, "nobody@uni.example")

    expect(tab.get_by_role("heading", name="Check your email")).to_be_visible()
    assert worker.sent == []
    assert mails(accounts_settings.EMAIL_FILE_PATH) == []
