"""Housekeeping never waits behind grading: with the grading queue backed up and no worker free
to take anything, beat still sweeps, so a grading whose worker died is recorded lost and queued
again within seconds (a sweep sent as a task used to wait, and expire, behind the backlog); and
a worker grading a backlog sends an email at once, from its housekeeping thread."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from accounts.mail import Email, email_send_later
from courses.models import Challenge
from submissions.models import GradingRun, Submission, WorkerHeartbeat
from submissions.services import submission_enqueue
from tests.integration.conftest import PrivateBroker, start_beat, start_worker, stop_worker
from tests.platform.conftest import make_submission

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

#: uploads waiting in the grading queue
BACKLOG = 40
FAST = {
    "GRADER_SWEEP_EVERY_SECONDS": "1",
    "GRADER_WORKER_DEAD_SECONDS": "3",
}
#: the sweep runs every second: a few seconds for beat to start, then one sweep
RECOVERED_WITHIN_SECONDS = 30


def test_beat_sweeps_while_the_grading_queue_is_backed_up(
    shared_dirs: dict[str, Path],
    private_broker: PrivateBroker,
    keypoints: Challenge,
    student: User,
    tmp_path: Path,
) -> None:
    enrollment = student.enrollments.get()
    # The backlog: uploads whose messages wait in the grading queue; every worker is busy.
    for _ in range(BACKLOG):
        submission_enqueue(make_submission(enrollment, keypoints))
    # A grading whose worker died: its heartbeat stopped minutes ago.
    dead = WorkerHeartbeat.objects.create(
        name="gone@host:1", beat_at=timezone.now() - timedelta(minutes=5)
    )
    stuck = make_submission(enrollment, keypoints, status=Submission.Status.RUNNING, attempts=1)
    run = GradingRun.objects.create(
        submission=stuck, attempt=1, outcome=GradingRun.Outcome.RUNNING, worker_name=dead.name
    )

    beat = start_beat(shared_dirs, tmp_path, {**FAST, **private_broker.env})
    try:
        # The sweep's line is written after its commit: the test waits for the line rather
        # than for the row (stopping beat in between lost it).
        deadline = time.monotonic() + RECOVERED_WITHIN_SECONDS
        while time.monotonic() < deadline and not any(
            "sweep: 1 re-queued" in line for line in beat.lines
        ):
            time.sleep(0.2)
    finally:
        os.killpg(beat.proc.pid, signal.SIGTERM)
        beat.proc.wait(timeout=30)
    log = "".join(beat.lines)

    # Each sweep says so in beat's log (what an operator, and benchmarks.bench_rush, read).
    assert "sweep: 1 re-queued" in log, log
    stuck.refresh_from_db()
    assert stuck.status == Submission.Status.QUEUED, log
    run.refresh_from_db()
    assert run.outcome == GradingRun.Outcome.LOST
    # Nothing of the backlog moved: only the sweep ran.
    waiting = Submission.objects.filter(status=Submission.Status.QUEUED).exclude(pk=stuck.pk)
    assert waiting.count() == BACKLOG


#: an email behind the backlog would wait for 40 gradings; served beside them, seconds
EMAIL_WITHIN_SECONDS = 20


def test_an_email_is_sent_within_seconds_while_uploads_wait(
    shared_dirs: dict[str, Path],
    private_broker: PrivateBroker,
    keypoints: Challenge,
    student: User,
    quick_model: Path,
    tmp_path: Path,
) -> None:
    """A worker grading a backlog of 40 uploads one at a time still sends a password reset at
    once: its housekeeping thread serves that queue beside the pool."""
    enrollment = student.enrollments.get()
    model = quick_model.read_bytes()
    for _ in range(BACKLOG):
        submission_enqueue(make_submission(enrollment, keypoints, content=model))
    outbox = tmp_path / "mail"
    env = {
        **private_broker.env,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(outbox),
    }
    worker = start_worker(shared_dirs, hostname="backlog@%h", env=env)
    try:
        deadline = time.monotonic() + 120
        while not Submission.objects.filter(status=Submission.Status.RUNNING).exists():
            assert time.monotonic() < deadline, worker.log()
            time.sleep(0.1)
        email_send_later(
            Email(subject="Reset", body="a link", from_email=None, to=["student@example.com"])
        )
        sent = time.monotonic()
        while not (outbox.exists() and any(outbox.iterdir())):
            assert time.monotonic() - sent < EMAIL_WITHIN_SECONDS, worker.log()
            time.sleep(0.1)
        waiting = Submission.objects.filter(status=Submission.Status.QUEUED).count()
    finally:
        stop_worker(worker)

    assert "Subject: Reset" in "".join(p.read_text() for p in outbox.iterdir())
    # The backlog was still there: the email did not wait for it.
    assert waiting >= BACKLOG // 2
