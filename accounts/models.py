"""Who was invited to which semester, and when: a second ``--invite`` run skips them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from courses.models import Semester


class Invitation(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations"
    )
    semester = models.ForeignKey(Semester, on_delete=models.CASCADE, related_name="invitations")
    #: the latest email sent (a re-invitation moves it)
    sent_at = models.DateTimeField(default=timezone.now)
    #: how many emails were sent, re-invitations included
    sent_count = models.PositiveIntegerField(default=1)
    #: who sent the latest one (empty from the command line)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["semester", "-sent_at"]
        constraints = [
            # Invitations are sent per semester: the lookup "invited to this one yet?" is this.
            models.UniqueConstraint(fields=["user", "semester"], name="one_invitation_per_semester")
        ]

    def __str__(self) -> str:
        return f"{self.user} invited to {self.semester} on {self.sent_at:%Y-%m-%d}"


class ExternalIdentity(models.Model):
    """An account at an identity provider that signs in one account here.

    The provider's ``(issuer, subject)`` pair is stable for a person, unlike their email address,
    which can change or be handed to someone else later: once linked, sign-in follows this pair
    and never the email again. Generic on purpose: OpenID Connect (``iss``, ``sub``) uses it
    now; an LTI 1.3 launch (``iss``, ``sub``) or SAML (IdP entity id, persistent NameID) can
    use the same rows through ``accounts.identities``.
    """

    class Method(models.TextChoices):
        #: the first sign-in, by the provider's verified email, to a non-staff account
        EMAIL = "email", "verified email at first sign-in"
        #: the signed-in owner linked it from their profile page
        SIGNED_IN = "signed_in", "linked by the signed-in owner"
        #: the account was created for it (OIDC_CREATE_USERS)
        CREATED = "created", "account created at first sign-in"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities"
    )
    #: who vouches for the subject: the OIDC issuer URL (or an LTI platform, a SAML IdP)
    issuer = models.CharField(max_length=500)
    #: the provider's stable id of the person (OIDC ``sub``: at most 255 ASCII characters)
    subject = models.CharField(max_length=255)
    method = models.CharField(max_length=16, choices=Method.choices)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["issuer", "subject"]
        verbose_name_plural = "external identities"
        constraints = [
            # Every sign-in looks a person up by this pair, and one pair signs in one account.
            models.UniqueConstraint(fields=["issuer", "subject"], name="one_account_per_identity")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer} → {self.user}"


class PasswordResetRequest(models.Model):
    """One "Forgot your password?" request that was let through, kept for the throttle's window
    (``accounts.throttle``). Both keys are keyed hashes: the table says how often an address or
    email asked, not which ones."""

    #: HMAC of the client's IP address
    address_key = models.CharField(max_length=64)
    #: HMAC of the normalised email typed in (known or not: both count alike)
    email_key = models.CharField(max_length=64)
    requested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # "How many from this address / for this email since <window start>?"
            models.Index(fields=["address_key", "requested_at"], name="reset_by_address"),
            models.Index(fields=["email_key", "requested_at"], name="reset_by_email"),
            # Deleting the rows that fell out of the window.
            models.Index(fields=["requested_at"], name="reset_by_time"),
        ]

    def __str__(self) -> str:
        return f"password reset request at {self.requested_at:%Y-%m-%d %H:%M}"


class LanguagePreference(models.Model):
    """The language a user reads the site and their emails in.

    ``chosen`` says the user picked it with the language switch: only then does it win over the
    browser's ``Accept-Language`` on every page. Otherwise it is the language their browser
    asked for when they last signed in, kept so a worker (which has no request) writes their
    emails in it.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="language_preference"
    )
    language = models.CharField(max_length=10, choices=settings.LANGUAGES)
    chosen = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user}: {self.language}{' (chosen)' if self.chosen else ''}"
