"""Alerts to site admins: one email when an incident starts and one when it recovers.

Looked at by every sweep. The state is in the database (``HealthAlert``, one open row per kind),
so a hundred sweeps during one incident send one email, and a restart forgets nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from submissions import health
from submissions.models import HealthAlert

logger = logging.getLogger(__name__)

Kind = HealthAlert.Kind


def recipients() -> list[str]:
    """``ADMINS`` and every active superuser with an email, once each."""
    emails = [email for _name, email in settings.ADMINS]
    emails += list(
        get_user_model()
        .objects.filter(is_superuser=True, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    return sorted(set(emails))


def problems(now: datetime) -> dict[str, str]:
    """The incidents going on now: kind -> what is seen."""
    found: dict[str, str] = {}
    oldest = health.oldest_queued_seconds(now)
    if oldest > settings.ALERT_QUEUE_AGE_SECONDS:
        found[Kind.QUEUE_AGE] = (
            f"The oldest queued submission has waited {oldest / 60:.0f} min"
            f" (the limit is {settings.ALERT_QUEUE_AGE_SECONDS / 60:.0f} min)."
        )
    # Only once a worker has been seen: a fresh install without workers is not an incident.
    if health.workers_ever_seen() and not health.any_worker_alive(now):
        found[Kind.NO_WORKER] = "No grading worker has a heartbeat: nothing is being graded."
    return found


def alerts_check(now: datetime | None = None) -> list[str]:
    """Open and email new incidents, close and email recovered ones; returns what was sent."""
    now = now or timezone.now()
    current = problems(now)
    sent: list[str] = []
    for kind, detail in current.items():
        try:
            with transaction.atomic():
                HealthAlert.objects.create(kind=kind, opened_at=now, detail=detail)
        except IntegrityError:  # already open: told once
            continue
        _email(f"[leaderboard] {Kind(kind).label}", detail)
        sent.append(f"opened {kind}")
    for kind in Kind.values:
        if kind in current:
            continue
        open_alert = HealthAlert.objects.filter(kind=kind, resolved_at__isnull=True).first()
        if open_alert is None:
            continue
        closed = HealthAlert.objects.filter(pk=open_alert.pk, resolved_at__isnull=True).update(
            resolved_at=now
        )
        if closed:
            minutes = (now - open_alert.opened_at).total_seconds() / 60
            _email(
                f"[leaderboard] Recovered: {Kind(kind).label}",
                f"Recovered after {minutes:.0f} min. It started with: {open_alert.detail}",
            )
            sent.append(f"resolved {kind}")
    return sent


def _email(subject: str, body: str) -> None:
    to = recipients()
    if not to:
        logger.warning("alert with nobody to tell (set ADMINS): %s", subject)
        return
    url = settings.SITE_URL + "/staff/health/"
    try:
        send_mail(subject, f"{body}\n\nHealth page: {url}\n", from_email=None, recipient_list=to)
    except Exception:
        # The alert stays recorded; a mail server that is down must not break the sweep.
        logger.exception("sending the alert %r failed", subject)
