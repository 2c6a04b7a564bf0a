"""Alerts to site admins: one email when an incident starts, one when it recovers, however
many sweeps look in between."""

from __future__ import annotations

from datetime import timedelta

from django.core import mail
from django.utils import timezone

from submissions import heartbeats
from submissions.alerts import alerts_check, recipients
from submissions.models import HealthAlert, Submission
from submissions.sweep import submissions_sweep
from tests.platform.conftest import make_submission


def test_it_emails_admins_once_when_the_queue_is_too_old_and_once_when_it_recovers(
    staff, enrollment, challenge, settings
):
    settings.ADMINS = [("ops", "ops@example.com")]
    settings.ALERT_QUEUE_AGE_SECONDS = 600
    old = make_submission(enrollment, challenge, created_at=timezone.now() - timedelta(minutes=11))

    for _ in range(3):
        submissions_sweep()

    assert [m.subject for m in mail.outbox] == ["[leaderboard] Queue too old"]
    assert sorted(mail.outbox[0].to) == ["ops@example.com", "staff@example.com"]
    assert "waited 11 min" in mail.outbox[0].body
    Submission.objects.filter(pk=old.pk).update(status=Submission.Status.GRADED)
    alerts_check()
    alerts_check()
    assert [m.subject for m in mail.outbox][1:] == ["[leaderboard] Recovered: Queue too old"]
    assert HealthAlert.objects.get().resolved_at is not None


def test_it_alerts_when_no_worker_beats_but_not_on_a_fresh_install(staff, settings):
    settings.GRADER_WORKER_DEAD_SECONDS = 30
    assert alerts_check() == []  # no worker ever seen
    heartbeats.beat("w:1", host="w", device="cpu")
    assert alerts_check() == []

    later = timezone.now() + timedelta(seconds=31)
    assert alerts_check(later) == ["opened no_worker"]
    assert alerts_check(later) == []
    heartbeats.beat("w:1", host="w", device="cpu")
    assert alerts_check() == ["resolved no_worker"]
    assert [m.subject for m in mail.outbox] == [
        "[leaderboard] No worker alive",
        "[leaderboard] Recovered: No worker alive",
    ]


def test_it_tells_superusers_and_admins_once_each(staff, settings):
    settings.ADMINS = [("me", "staff@example.com")]
    assert recipients() == ["staff@example.com"]
