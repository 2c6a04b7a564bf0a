"""The done-when of invitations: import a roster with ``--invite``, read the invitation from
the file-based email backend, follow the link, set a password, sign in, see the course; the
same link then fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management import call_command
from playwright.sync_api import Page, expect

from courses.models import Enrollment, Semester
from tests.accounts.conftest import link_in, mails

PASSWORD = "correct horse battery staple"


def test_it_takes_an_invited_student_from_the_email_to_the_course(
    tab: Page, live_server: Any, accounts_settings: Any, semester: Semester, tmp_path: Path
) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("username,email,first_name,last_name\nada,ada@uni.example,Ada,Lovelace\n")
    call_command("import_roster", "--semester", "i2dl/ws2026", str(roster), "--invite")
    handle = Enrollment.objects.get(user__username="ada").handle

    [invitation] = mails(accounts_settings.EMAIL_FILE_PATH)
    assert "To: ada@uni.example" in invitation
    assert "Introduction to Deep Learning, Winter 2026/27" in invitation
    assert handle in invitation
    link = link_in(invitation, "/accounts/invite/")
    assert link.startswith(live_server.url)

    tab.goto(link)
    tab.get_by_label("New password", exact=True).fill(PASSWORD)
    tab.get_by_label("New password confirmation").fill(PASSWORD)
    tab.get_by_role("button", name="Set password").click()
    expect(tab.get_by_role("heading", name="Your password is set")).to_be_visible()
    tab.get_by_role("link", name="Sign in").last.click()
    tab.fill("#id_username", "ada")
    tab.fill("#id_password", PASSWORD)
    tab.get_by_role("button", name="Sign in").click()

    expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
    expect(tab.get_by_role("heading", name="My courses")).to_be_visible()
    expect(tab.get_by_text(f"You take part as {handle}")).to_be_visible()

    tab.goto(link)
    expect(tab.get_by_role("heading", name="This invitation link no longer works")).to_be_visible()
    expect(tab.get_by_label("New password", exact=True)).to_have_count(0)
