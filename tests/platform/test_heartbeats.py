"""Worker heartbeats: a claim whose worker stopped beating moves on in seconds, by the sweep or
by a re-delivered message; a live worker's claim is left alone; a worker that comes back after
its attempt moved on changes nothing; a lost database connection while recording is retried."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import OperationalError
from django.utils import timezone

from grader.errors import GradingError
from grader.evaluate import Evaluation
from submissions import heartbeats
from submissions.models import GradingRun, RegradeBatch, Submission, WorkerHeartbeat
from submissions.regrade.attempts import attempt_open, attempt_record
from submissions.results import (
    GradingOutcome,
    Worker,
    grading_open,
    grading_record,
    with_db_retry,
)
from submissions.sweep import DEAD_NOTE, NO_RESULT_NOTE, submissions_sweep
from tests.platform.conftest import graded, make_submission


def worker(name: str) -> Worker:
    return Worker(host=name.split(":")[0], device="cpu", torch_version="", name=name)


def beating(name: str, seconds_ago: float = 0.0) -> WorkerHeartbeat:
    heartbeats.beat(name, host=name.split(":")[0], device="cpu")
    WorkerHeartbeat.objects.filter(name=name).update(
        beat_at=timezone.now() - timedelta(seconds=seconds_ago)
    )
    return WorkerHeartbeat.objects.get(name=name)


@pytest.fixture(autouse=True)
def dead_after(settings):
    settings.GRADER_WORKER_DEAD_SECONDS = 30


def queued_attempt(enrollment, challenge) -> GradingRun:
    """A re-grade attempt of one graded upload, waiting for a worker."""
    submission = graded(enrollment, challenge, 120.0)
    batch = RegradeBatch.objects.create(challenge=challenge, reason="test", total=1)
    return GradingRun.objects.create(
        submission=submission, batch=batch, attempt=0, outcome=GradingRun.Outcome.QUEUED
    )


def test_it_requeues_at_once_what_a_dead_worker_held(enrollment, challenge, sent):
    beating("w1:10")
    submission = make_submission(enrollment, challenge)
    assert grading_open(submission.pk, worker("w1:10")) is not None
    beating("w1:10", seconds_ago=31)  # killed: it stopped beating 31 s ago

    report = submissions_sweep()

    assert report.requeued == [str(submission.pk)]
    submission.refresh_from_db()
    assert submission.status == Submission.Status.QUEUED
    run = submission.runs.get()
    assert (run.outcome, run.error_code, run.log) == (GradingRun.Outcome.LOST, "lost", DEAD_NOTE)


def test_it_leaves_alone_what_a_live_worker_holds(enrollment, challenge):
    beating("w1:10", seconds_ago=20)
    submission = make_submission(enrollment, challenge)
    assert grading_open(submission.pk, worker("w1:10")) is not None

    assert submissions_sweep().requeued == []
    submission.refresh_from_db()
    assert submission.status == Submission.Status.RUNNING


def test_a_worker_that_stopped_cleanly_is_not_alive(enrollment, challenge):
    beating("w1:10")
    submission = make_submission(enrollment, challenge)
    assert grading_open(submission.pk, worker("w1:10")) is not None
    heartbeats.stopped("w1:10")

    assert submissions_sweep().requeued == [str(submission.pk)]


def test_it_labels_a_live_worker_without_a_result_a_platform_error_not_lost(
    enrollment, challenge, settings
):
    beating("w1:10")
    submission = make_submission(enrollment, challenge)
    assert grading_open(submission.pk, worker("w1:10")) is not None
    long_ago = timezone.now() - timedelta(days=1)
    Submission.objects.filter(pk=submission.pk).update(started_at=long_ago)

    assert submissions_sweep().requeued == [str(submission.pk)]

    run = submission.runs.get()
    assert (run.outcome, run.error_code, run.log) == (
        GradingRun.Outcome.PLATFORM_ERROR,
        "no_result",
        NO_RESULT_NOTE,
    )


def test_a_redelivered_message_takes_over_a_dead_workers_claim(enrollment, challenge):
    beating("w1:10")
    submission = make_submission(enrollment, challenge)
    first = grading_open(submission.pk, worker("w1:10"))
    assert first is not None
    beating("w2:20")

    # While the holder beats, a second message is a duplicate and finds nothing.
    assert grading_open(submission.pk, worker("w2:20")) is None
    beating("w1:10", seconds_ago=31)
    second = grading_open(submission.pk, worker("w2:20"))

    assert second is not None and second.submission.attempts == 2
    assert second.run.worker_name == "w2:20"
    first.run.refresh_from_db()
    assert first.run.outcome == GradingRun.Outcome.LOST
    # Only one of two re-delivered messages wins.
    assert grading_open(submission.pk, worker("w3:30")) is None


def test_a_redelivered_regrade_message_takes_over_a_dead_workers_attempt(
    enrollment, challenge, sent
):
    run = queued_attempt(enrollment, challenge)
    beating("w1:10")
    assert attempt_open(run.pk, worker("w1:10")) is not None
    assert attempt_open(run.pk, worker("w2:20")) is None
    beating("w1:10", seconds_ago=31)

    taken = attempt_open(run.pk, worker("w2:20"))

    assert taken is not None and (taken.attempt, taken.worker_name) == (1, "w2:20")


def test_the_sweep_requeues_a_dead_workers_regrade_attempt_at_once(
    enrollment, challenge, sent, django_capture_on_commit_callbacks
):
    run = queued_attempt(enrollment, challenge)
    beating("w1:10")
    assert attempt_open(run.pk, worker("w1:10")) is not None
    beating("w1:10", seconds_ago=31)

    with django_capture_on_commit_callbacks(execute=True):
        report = submissions_sweep()

    assert report.runs.requeued == [run.pk]
    run.refresh_from_db()
    assert run.outcome == GradingRun.Outcome.QUEUED
    assert [m.args for m in sent] == [[run.pk]]


def late_result(score: float) -> GradingOutcome:
    """What a worker hands in when its grading went well."""
    evaluation = Evaluation(
        task="keypoints",
        format="pt2",
        score=score,
        passed=True,
        threshold=1.0,
        metrics={"score": score, "mse": 1 / (2 * score)},
        dataset_hash="a" * 64,
        params=10,
        seconds=0.1,
        runner="process",
    )
    return GradingOutcome(runner="process", dataset_hash="a" * 64, evaluation=evaluation)


def test_a_worker_finishing_after_the_sweep_recorded_it_lost_changes_nothing(
    enrollment, challenge, sent, django_capture_on_commit_callbacks
):
    beating("w1:10")
    submission = make_submission(enrollment, challenge)
    first = grading_open(submission.pk, worker("w1:10"))
    assert first is not None
    beating("w1:10", seconds_ago=31)  # stalled, not dead: it comes back with a result
    assert submissions_sweep().requeued == [str(submission.pk)]
    lost = GradingRun.objects.get(pk=first.run.pk)

    with django_capture_on_commit_callbacks(execute=True):
        counted = grading_record(first, late_result(123.4), last_try=False)

    assert counted is False
    run = GradingRun.objects.get(pk=first.run.pk)
    assert (run.outcome, run.error_code, run.score, run.metrics, run.finished_at) == (
        GradingRun.Outcome.LOST,
        "lost",
        None,
        {},
        lost.finished_at,
    )
    assert run.log == (
        f"{DEAD_NOTE}\na late result arrived after this attempt was recorded lost (worker gone):"
        " graded, score 123.4 (passed) — not counted"
    )
    submission.refresh_from_db()
    assert (submission.status, submission.score, submission.attempts) == (
        Submission.Status.QUEUED,
        None,
        1,
    )
    assert mail.outbox == []
    # The next attempt grades it as usual.
    second = grading_open(submission.pk, worker("w2:20"))
    assert second is not None
    assert grading_record(second, late_result(130.0), last_try=False)
    submission.refresh_from_db()
    assert (submission.status, submission.score) == (Submission.Status.GRADED, 130.0)


def test_a_worker_finishing_after_its_claim_was_taken_over_changes_nothing(enrollment, challenge):
    beating("w1:10")
    submission = make_submission(enrollment, challenge)
    first = grading_open(submission.pk, worker("w1:10"))
    assert first is not None
    beating("w1:10", seconds_ago=31)
    second = grading_open(submission.pk, worker("w2:20"))
    assert second is not None

    rejected = GradingOutcome(runner="process", error=GradingError("output_shape", "no"))
    counted = grading_record(first, rejected, last_try=False)

    run = GradingRun.objects.get(pk=first.run.pk)
    assert run.outcome == GradingRun.Outcome.LOST
    assert run.log.endswith(
        "a late result arrived after this attempt was recorded lost (worker gone):"
        " rejected (the model's fault): output_shape — not counted"
    )
    submission.refresh_from_db()
    assert (submission.status, submission.error) == (Submission.Status.RUNNING, "")
    assert second.run.attempt == submission.attempts == 2
    assert counted is False


def test_a_regrade_worker_finishing_after_the_sweep_requeued_its_attempt_changes_nothing(
    enrollment, challenge, sent, django_capture_on_commit_callbacks
):
    queued = queued_attempt(enrollment, challenge)
    batch, submission = queued.batch, queued.submission
    beating("w1:10")
    first = attempt_open(queued.pk, worker("w1:10"))
    assert first is not None
    beating("w1:10", seconds_ago=31)
    assert submissions_sweep().runs.requeued == [queued.pk]
    beating("w2:20")
    second = attempt_open(queued.pk, worker("w2:20"))
    assert second is not None and second.attempt == 1

    with django_capture_on_commit_callbacks(execute=True):
        counted = attempt_record(first, late_result(999.0), last_try=False)

    run = GradingRun.objects.get(pk=queued.pk)
    assert (run.outcome, run.attempt, run.worker_name, run.score) == (
        GradingRun.Outcome.RUNNING,
        1,
        "w2:20",
        None,
    )
    assert run.log.endswith(
        "a late result arrived after attempt 0 was re-queued (now attempt 1: running):"
        " graded, score 999 (passed) — not counted"
    )
    batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.RUNNING
    assert counted is False
    # The attempt that holds the run records its own result, and the batch publishes it.
    with django_capture_on_commit_callbacks(execute=True):
        assert attempt_record(second, late_result(130.0), last_try=False)
    run.refresh_from_db()
    batch.refresh_from_db()
    submission.refresh_from_db()
    assert (run.outcome, run.score) == (GradingRun.Outcome.GRADED, 130.0)
    assert (batch.status, submission.score) == (RegradeBatch.Status.PUBLISHED, 130.0)


def test_a_regrade_worker_finishing_after_its_last_attempt_was_recorded_lost_changes_nothing(
    enrollment, challenge, settings, sent, django_capture_on_commit_callbacks
):
    settings.GRADER_MAX_ATTEMPTS = 1
    queued = queued_attempt(enrollment, challenge)
    submission = queued.submission
    beating("w1:10")
    first = attempt_open(queued.pk, worker("w1:10"))
    assert first is not None
    beating("w1:10", seconds_ago=31)
    with django_capture_on_commit_callbacks(execute=True):
        assert submissions_sweep().runs.lost == [queued.pk]
    lost = GradingRun.objects.get(pk=queued.pk)

    with django_capture_on_commit_callbacks(execute=True):
        counted = attempt_record(first, late_result(999.0), last_try=False)

    run = GradingRun.objects.get(pk=queued.pk)
    assert (run.outcome, run.score, run.finished_at) == (
        GradingRun.Outcome.LOST,
        None,
        lost.finished_at,
    )
    assert "recorded lost (worker gone): graded, score 999 (passed) — not counted" in run.log
    submission.refresh_from_db()
    assert submission.score == 120.0
    assert counted is False


def test_a_write_retried_after_it_had_committed_changes_nothing_and_notes_nothing(
    enrollment, challenge, django_capture_on_commit_callbacks
):
    """The connection dropped after the commit, before its answer: ``with_db_retry`` writes
    again, finds its own outcome recorded, and neither notes a late result nor asks for a
    retry of the grading."""
    submission = make_submission(enrollment, challenge)
    grading = grading_open(submission.pk, worker("w1:10"))
    assert grading is not None
    with django_capture_on_commit_callbacks(execute=True):
        assert grading_record(grading, late_result(123.4), last_try=False)

    with django_capture_on_commit_callbacks(execute=True):
        again = grading_record(grading, late_result(123.4), last_try=False)

    assert again is True
    run = GradingRun.objects.get(pk=grading.run.pk)
    assert (run.outcome, run.score) == (GradingRun.Outcome.GRADED, 123.4)
    assert "late result" not in run.log
    assert len(mail.outbox) == 1


def test_it_retries_a_result_write_after_a_lost_connection(db, settings, caplog):
    settings.GRADER_RECORD_BACKOFF_SECONDS = 0.01
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("terminating connection due to administrator command")
        return "recorded"

    assert with_db_retry("submission x", flaky) == "recorded"
    assert len(calls) == 3
    assert "retry 2 of" in caplog.text


def test_it_gives_up_retrying_after_the_configured_tries(db, settings):
    settings.GRADER_RECORD_BACKOFF_SECONDS = 0.0
    settings.GRADER_RECORD_RETRIES = 2
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise OperationalError("the database system is starting up")

    with pytest.raises(OperationalError):
        with_db_retry("submission x", down)
    assert len(calls) == 3


@pytest.mark.postgres
def test_it_records_a_finished_grading_across_a_real_database_restart(
    transactional_db, enrollment, challenge, settings, caplog
):
    """PostgreSQL stack only (SQLite is a file in this process: nothing to restart): the server
    ends this process's connection, as a restart does, between the evaluation and the result
    write; the write reconnects and the result is recorded."""
    import psycopg
    from django.db import connection

    settings.GRADER_RECORD_BACKOFF_SECONDS = 0.05
    submission = make_submission(enrollment, challenge)
    grading = grading_open(submission.pk, worker("w1:10"))
    assert grading is not None
    pid = connection.connection.info.backend_pid
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"] or "postgres",
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    # A rejection: what it records is the same kind of write as a grade, without running a model.
    outcome = GradingOutcome(
        runner="process", error=GradingError("bad_output", "your model said no")
    )

    assert with_db_retry("submission", grading_record, grading, outcome, last_try=False)

    submission.refresh_from_db()
    assert submission.status == Submission.Status.FAILED
    assert submission.error == "your model said no"
    assert "database unavailable" in caplog.text
