"""Password reset for every account with an email, including those a roster import created."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.auth.forms import PasswordResetForm
from django.template import loader
from django.utils import translation

from accounts.identities import users_by_email
from accounts.mail import email_send_later
from courses.languages import recipient_language


class AnyAccountPasswordResetForm(PasswordResetForm):
    """Django's form skips accounts with an unusable password (it assumes they sign in some
    other way); roster accounts start with one, and a reset is how their students get in.
    The email is Django's (its token and templates), sent by a worker (``accounts.mail``)."""

    def get_users(self, email: str) -> Iterator[Any]:
        # Active accounts whose email equals this one once normalised, without Django's
        # usable-password filter. The form sends the same page whether or not one matched.
        for user in users_by_email(email):
            if user.is_active:
                yield user

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        # What Django's send_mail builds (this site has no HTML template), handed to a worker;
        # in the account's saved language, else the language of the page that asked.
        with translation.override(recipient_language(context["user"], translation.get_language())):
            subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
            body = loader.render_to_string(email_template_name, context)
        email_send_later(
            {"subject": subject, "body": body, "from_email": from_email, "to": [to_email]}
        )
