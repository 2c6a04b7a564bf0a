"""Inviting the students of a semester who have never signed in: one email each, with their
course, handle and a one-time link to set a password (``accounts.tokens``).

A student is invited once per semester (an ``Invitation`` row says when); ``reinvite`` sends
again to those invited before who still have not signed in, with a fresh link.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMessage, get_connection
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from accounts.models import Invitation
from accounts.tokens import invitation_tokens
from courses.languages import recipient_language
from courses.models import Enrollment, Semester


@dataclass
class InvitationReport:
    sent: int = 0
    #: invited before and not asked to send again
    already_invited: int = 0
    #: never signed in, but no email address to write to
    no_email: int = 0

    def __str__(self) -> str:
        return (
            f"{self.sent} invitation(s) sent, {self.already_invited} already invited,"
            f" {self.no_email} without an email address"
        )


def invitation_link(user: User) -> str:
    """The absolute one-time link (emails are sent without a request, hence SITE_URL)."""
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = invitation_tokens.make_token(user)
    return settings.SITE_URL + reverse("invitation_accept", args=[uidb64, token])


def invitations_send(
    semester: Semester,
    *,
    user_ids: Iterable[int] | None = None,
    reinvite: bool = False,
    sent_by: User | None = None,
) -> InvitationReport:
    """Invite the students of ``semester`` (or only ``user_ids`` of them) who never signed in."""
    enrollments = (
        Enrollment.objects.filter(
            semester=semester, user__last_login__isnull=True, user__is_active=True
        )
        .select_related("user", "semester__course")
        .order_by("user__username")
    )
    if user_ids is not None:
        enrollments = enrollments.filter(user_id__in=list(user_ids))
    invited = dict(
        Invitation.objects.filter(semester=semester).values_list("user_id", "pk").iterator()
    )
    report = InvitationReport()
    # One SMTP connection for the whole roster, not one per student.
    with get_connection() as connection:
        for enrollment in enrollments.iterator():
            user = enrollment.user
            if not user.email:
                report.no_email += 1
                continue
            if user.pk in invited and not reinvite:
                report.already_invited += 1
                continue
            connection.send_messages([_message(enrollment)])
            _record(user, semester, sent_by)
            report.sent += 1
    return report


def _message(enrollment: Enrollment) -> EmailMessage:
    semester = enrollment.semester
    context = {
        "user": enrollment.user,
        "course": semester.course,
        "semester": semester,
        "handle": enrollment.handle,
        "link": invitation_link(enrollment.user),
        "expires_on": timezone.now() + timedelta(days=settings.INVITE_DAYS),
        "site_url": settings.SITE_URL,
        "login_url": settings.SITE_URL + reverse("login"),
    }
    with translation.override(recipient_language(enrollment.user)):
        subject = _("Your account for %(course)s, %(semester)s") % {
            "course": semester.course.title,
            "semester": semester.title,
        }
        body = render_to_string("accounts/email/invitation.txt", context)
    return EmailMessage(subject, body, to=[enrollment.user.email])


def _record(user: User, semester: Semester, sent_by: User | None) -> None:
    updated = Invitation.objects.filter(user=user, semester=semester).update(
        sent_at=timezone.now(),
        sent_count=F("sent_count") + 1,
        sent_by=sent_by,
    )
    if not updated:
        Invitation.objects.create(user=user, semester=semester, sent_by=sent_by)
