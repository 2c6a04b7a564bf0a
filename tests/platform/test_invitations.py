"""``accounts.invitations`` and the invitation link: who is invited, what the email says, a link
that works once and expires after INVITE_DAYS."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.utils import timezone

from accounts.invitations import invitations_send
from accounts.models import Invitation
from accounts.tokens import InvitationTokenGenerator, invitation_tokens
from courses.models import Enrollment
from courses.roster import roster_import

ROSTER = "username,email,first_name\nada,ada@uni.example,Ada\nalan,alan@uni.example,Alan\n"


def link_of(message: mail.EmailMessage) -> str:
    match = re.search(r"http://testserver(/accounts/invite/\S+)", str(message.body))
    assert match, message.body
    return match.group(1)


def test_it_emails_each_student_who_never_signed_in_their_course_handle_and_link(semester):
    roster_import(semester, ROSTER)

    report = invitations_send(semester)

    assert (report.sent, report.already_invited, report.no_email) == (2, 0, 0)
    ada = next(m for m in mail.outbox if m.to == ["ada@uni.example"])
    handle = Enrollment.objects.get(user__username="ada").handle
    assert ada.subject == "Your account for Introduction to Deep Learning, Winter 2026/27"
    assert handle in ada.body
    assert "Introduction to Deep Learning, Winter 2026/27" in ada.body
    assert link_of(ada).startswith("/accounts/invite/")
    assert Invitation.objects.filter(semester=semester).count() == 2


def test_it_sends_nothing_to_those_already_invited_unless_asked_to(semester):
    roster_import(semester, ROSTER)
    invitations_send(semester)
    mail.outbox.clear()

    again = invitations_send(semester)
    reinvited = invitations_send(semester, reinvite=True)

    assert (again.sent, again.already_invited) == (0, 2)
    assert reinvited.sent == 2
    assert len(mail.outbox) == 2
    assert set(Invitation.objects.values_list("sent_count", flat=True)) == {2}


def test_it_leaves_out_students_who_signed_in_and_counts_those_without_email(semester):
    roster_import(semester, ROSTER + "kurt,,Kurt\n")
    User.objects.filter(username="alan").update(last_login=timezone.now())

    report = invitations_send(semester)

    assert (report.sent, report.no_email) == (1, 1)
    assert [m.to for m in mail.outbox] == [["ada@uni.example"]]


def test_it_invites_only_the_given_accounts(semester):
    roster_import(semester, ROSTER)
    ada = User.objects.get(username="ada")

    report = invitations_send(semester, user_ids=[ada.pk])

    assert report.sent == 1
    assert [m.to for m in mail.outbox] == [["ada@uni.example"]]


def test_it_lets_the_link_set_a_password_once(client, semester):
    roster_import(semester, ROSTER)
    invitations_send(semester)
    link = link_of(next(m for m in mail.outbox if m.to == ["ada@uni.example"]))

    form = client.get(link, follow=True)
    assert form.context["validlink"]
    password = "correct horse battery staple"
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": password, "new_password2": password},
        follow=True,
    )
    again = client.get(link, follow=True)

    assert "Your password is set" in done.content.decode()
    assert User.objects.get(username="ada").check_password(password)
    assert not again.context["validlink"]
    assert "This invitation link no longer works" in again.content.decode()


class Generator(InvitationTokenGenerator):
    """Makes tokens as if it were ``days_ago`` days ago."""

    def __init__(self, days_ago: float) -> None:
        super().__init__()
        self.days_ago = days_ago

    def _now(self) -> datetime:
        return datetime.now() - timedelta(days=self.days_ago)


@pytest.mark.parametrize(("days_ago", "valid"), [(13.9, True), (14.1, False)])
def test_it_expires_the_link_after_invite_days_not_the_reset_timeout(
    settings, semester, days_ago, valid
):
    settings.INVITE_DAYS = 14
    settings.PASSWORD_RESET_TIMEOUT = 3600
    roster_import(semester, ROSTER)
    ada = User.objects.get(username="ada")

    token = Generator(days_ago).make_token(ada)

    assert invitation_tokens.check_token(ada, token) is valid


def test_it_does_not_accept_a_password_reset_token_as_an_invitation(semester):
    from django.contrib.auth.tokens import default_token_generator

    roster_import(semester, ROSTER)
    ada = User.objects.get(username="ada")

    assert not invitation_tokens.check_token(ada, default_token_generator.make_token(ada))
