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
