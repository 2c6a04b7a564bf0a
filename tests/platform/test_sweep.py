"""The periodic sweep: lost messages are sent again, dead workers' attempts recorded as lost."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from submissions.doorbell import GRADE_SUBMISSION
from submissions.lifecycle import GAVE_UP_MESSAGE
from submissions.models import GradingRun, Submission
from submissions.results import Worker, grading_open
from submissions.services import grading_time_limits
from submissions.sweep import submissions_sweep
from tests.platform.conftest import make_submission
from worker import housekeeping
from worker.tasks import sweep_stuck


@pytest.fixture
def long_ago(challenge, settings):
    """Further back than any limit: the hard time limit plus the grace period, and more."""
    _soft, hard = grading_time_limits(challenge)
    return timezone.now() - timedelta(
        seconds=hard
        + settings.GRADER_STUCK_RUNNING_GRACE_SECONDS
        + settings.GRADER_STUCK_QUEUED_SECONDS
        + 60
    )


def running_since(enrollment, challenge, started, *, attempts=1, open_run=True) -> Submission:
    submission = make_submission(enrollment, challenge)
    if open_run:
        assert grading_open(submission.pk, Worker("gone", "cpu", "")) is not None
    else:
        Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.RUNNING)
    Submission.objects.filter(pk=submission.pk).update(started_at=started, attempts=attempts)
    return Submission.objects.get(pk=submission.pk)


def test_it_sends_a_stale_queued_submission_again(
    enrollment, challenge, long_ago, sent, django_capture_on_commit_callbacks
):
    stale = make_submission(enrollment, challenge, created_at=long_ago)
    make_submission(enrollment, challenge)  # fresh: its message is surely still on its way

    with django_capture_on_commit_callbacks(execute=True):
        report = submissions_sweep()

    assert report.resent == [str(stale.pk)]
    assert [(m.name, m.args) for m in sent] == [(GRADE_SUBMISSION, [str(stale.pk)])]
    stale.refresh_from_db()
    assert stale.queued_at > long_ago


def test_it_does_not_resend_twice_in_a_row(enrollment, challenge, long_ago):
    make_submission(enrollment, challenge, created_at=long_ago)
    submissions_sweep()

    assert submissions_sweep().resent == []


def test_it_records_a_dead_workers_attempt_as_lost_and_requeues(
    enrollment, challenge, long_ago, sent, django_capture_on_commit_callbacks
):
    stuck = running_since(enrollment, challenge, long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        report = submissions_sweep()

    assert report.requeued == [str(stuck.pk)]
    stuck.refresh_from_db()
    assert stuck.status == Submission.Status.QUEUED
    run = stuck.runs.get()
    assert run.outcome == GradingRun.Outcome.LOST
    assert run.worker_host == "gone"
    assert [m.args for m in sent] == [[str(stuck.pk)]]


def test_it_records_a_lost_attempt_even_without_an_open_run(enrollment, challenge, long_ago):
    stuck = running_since(enrollment, challenge, long_ago, open_run=False)

    submissions_sweep()

    assert stuck.runs.get().outcome == GradingRun.Outcome.LOST


def test_it_leaves_a_job_within_its_time_limit_alone(enrollment, challenge):
    busy = running_since(enrollment, challenge, timezone.now() - timedelta(seconds=30))

    report = submissions_sweep()

    assert report.requeued == [] and report.given_up == []
    busy.refresh_from_db()
    assert busy.status == Submission.Status.RUNNING


def test_it_gives_up_after_too_many_attempts_without_counting(
    enrollment, challenge, long_ago, settings
):
    stuck = running_since(enrollment, challenge, long_ago, attempts=settings.GRADER_MAX_ATTEMPTS)

    report = submissions_sweep()

    assert report.given_up == [str(stuck.pk)]
    stuck.refresh_from_db()
    assert stuck.status == Submission.Status.FAILED
    assert stuck.error == GAVE_UP_MESSAGE
    assert stuck.counts_for_quota is False


def test_it_runs_in_beat_not_through_the_queues(
    enrollment, challenge, long_ago, settings, sent, monkeypatch, django_capture_on_commit_callbacks
):
    """Beat's own thread sweeps (``worker.housekeeping``); nothing periodic is queued, where it
    would wait behind a backlog of gradings (tests/integration/test_housekeeping.py runs it in a
    real beat process)."""
    # The test's database lives in this one connection, which beat's thread would recycle.
    monkeypatch.setattr(housekeeping, "close_old_connections", lambda: None)
    queued = make_submission(enrollment, challenge, created_at=long_ago)
    once = threading.Event()
    once.set()  # one sweep, then stop

    with django_capture_on_commit_callbacks(execute=True):
        housekeeping.sweep_forever(60.0, once)

    assert [(m.name, m.args) for m in sent] == [(GRADE_SUBMISSION, [str(queued.pk)])]
    # What beat does send (LTI's nightly roster and hourly passback) goes to the housekeeping
    # queue, which every worker serves beside its gradings; the sweep is never among it.
    schedule = settings.CELERY_BEAT_SCHEDULE.values()
    assert all(entry["options"]["queue"] == settings.HOUSEKEEPING_QUEUE for entry in schedule)
    assert "worker.tasks.sweep_stuck" not in {entry["task"] for entry in schedule}


def test_it_sends_again_everything_queued_before_a_worker_connected(
    enrollment, challenge, sent, django_capture_on_commit_callbacks
):
    """A broker restarted without persistence lost every message sent before a worker
    reconnected: those are sent again at once, oldest first, not after
    GRADER_STUCK_QUEUED_SECONDS; what was sent after the connection is left alone."""
    older = make_submission(enrollment, challenge, created_at=timezone.now() - timedelta(seconds=5))
    newer = make_submission(enrollment, challenge, created_at=timezone.now() - timedelta(seconds=2))
    connected = timezone.now() - timedelta(seconds=1)
    make_submission(enrollment, challenge)  # sent to the broker that is up now

    with django_capture_on_commit_callbacks(execute=True):
        report = submissions_sweep(queued_before=connected)

    assert report.resent == [str(older.pk), str(newer.pk)]
    assert [m.args for m in sent] == [[str(older.pk)], [str(newer.pk)]]
    assert submissions_sweep().resent == []  # the periodic sweep still waits for stale ones


def test_it_is_asked_for_by_a_worker_connecting_with_the_moment_it_connected(
    enrollment, challenge, sent, django_capture_on_commit_callbacks
):
    from worker import SweepOnConnect

    queued = make_submission(enrollment, challenge)
    SweepOnConnect(None).start(None)

    (message,) = sent
    assert message.name == sweep_stuck.name
    before = message.options["kwargs"]["queued_before"]
    assert timezone.now() - timedelta(seconds=5) < datetime.fromisoformat(before) <= timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_stuck.run(**message.options["kwargs"])["resent"] == [str(queued.pk)]
