"""What the LTI tool keeps beside django-lti's own rows (registrations, deployments, contexts,
users, memberships, resource links, line items, keys).

- ``LaunchValue``: pylti1p3's launch data storage (a login's nonce and state, a validated
  launch's claims), in the database so every web process sees what another one stored;
- ``LaunchSpent``: the states and nonces a launch has used, so an id_token or a state is
  accepted once;
- ``ContextSemester``: which semester an LMS course (context) is, set by its first launch;
- ``Placement``: which challenge an LMS resource link (placement) opens;
- ``Passback``: the score last sent for one student's result in one LMS course, and whether
  sending failed.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from lti_tool.models import LtiContext, LtiLineItem, LtiRegistration, LtiResourceLink

from courses.models import Challenge, Enrollment, Semester


class Platform(LtiRegistration):
    """The admin's name for a registration: one LMS (issuer and client id) and its
    deployments."""

    class Meta:
        proxy = True
        verbose_name = _("LTI platform")
        verbose_name_plural = _("LTI platforms")


class LaunchValue(models.Model):
    key = models.CharField(max_length=255, unique=True)
    value = models.JSONField(null=True)
    expires_at = models.DateTimeField(null=True, db_index=True)

    def __str__(self) -> str:
        return self.key


class LaunchSpent(models.Model):
    class Kind(models.TextChoices):
        STATE = "state", "state"
        NONCE = "nonce", "nonce"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    value = models.CharField(max_length=255)
    spent_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="lti_spent_once"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


class ContextSemester(models.Model):
    context = models.OneToOneField(
        LtiContext,
        on_delete=models.CASCADE,
        related_name="semester_link",
        verbose_name=_("LMS course"),
    )
    semester = models.ForeignKey(
        Semester,
        on_delete=models.CASCADE,
        related_name="lti_contexts",
        verbose_name=_("semester"),
    )
    linked_at = models.DateTimeField(_("linked at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("LMS course linked to a semester")
        verbose_name_plural = _("LMS courses linked to semesters")

    def __str__(self) -> str:
        return f"{self.context} → {self.semester}"


class Placement(models.Model):
    resource_link = models.OneToOneField(
        LtiResourceLink, on_delete=models.CASCADE, related_name="placement"
    )
    challenge = models.ForeignKey(
        Challenge, on_delete=models.CASCADE, related_name="lti_placements"
    )

    def __str__(self) -> str:
        return f"{self.resource_link} → {self.challenge}"


class ChallengeLineItem(models.Model):
    """The one line item the tool created for a challenge in an LMS course."""

    context = models.ForeignKey(LtiContext, on_delete=models.CASCADE, related_name="+")
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="+")
    line_item = models.OneToOneField(LtiLineItem, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["context", "challenge"], name="lti_one_line_item"),
        ]

    def __str__(self) -> str:
        return f"{self.challenge} in {self.context}"


class Passback(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("waiting to be sent")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")

    context = models.ForeignKey(LtiContext, on_delete=models.CASCADE, related_name="+")
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="+")
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default=State.PENDING)
    #: the score as last posted (the AGS payload), to send a changed one only
    sent_payload = models.JSONField(null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(_("last error"), blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("grade passback")
        verbose_name_plural = _("grade passbacks")
        constraints = [
            models.UniqueConstraint(
                fields=["context", "challenge", "enrollment"], name="lti_one_passback"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.enrollment} · {self.challenge} → {self.context}"
