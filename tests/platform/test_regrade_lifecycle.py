"""A re-grade batch's life after it starts: held back when publishing would be wrong (semester
closed, rules changed, newer results published, test data changed), published by staff later
(also a dry run), cancelled, and completed by the sweep when a worker dies.

Attempts are recorded through the real claim → record → complete → publish path; their
evaluations are built here with chosen scores, since the grading itself is covered by
``test_regrade_task`` and the integration tests.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from grader.evaluate import Evaluation
from leaderboard.boards import leaderboard_build
from submissions.doorbell import REGRADE_ATTEMPT
from submissions.lifecycle import run_claim as regrade_run_claim
from submissions.models import GradingRun, RegradeBatch, Submission
from submissions.regrade import (
    RegradeRefused,
    regrade_batch_cancel,
    regrade_batch_publish,
    regrade_batch_start,
)
from submissions.regrade.attempts import attempt_record
from submissions.results import GradingOutcome
from submissions.services import grading_time_limits
from submissions.sweep import submissions_sweep
from tests.platform.conftest import graded


def regrade_run_record_result(run: GradingRun, result: Evaluation) -> None:
    attempt_record(
        run,
        GradingOutcome(runner="process", dataset_hash=result.dataset_hash, evaluation=result),
        last_try=False,
    )


DATA = "a" * 64


def evaluation(score: float, dataset_hash: str = DATA) -> Evaluation:
    return Evaluation(
        task="keypoints",
        format="pt2",
        score=score,
        passed=score >= 100,
        threshold=100,
        metrics={"score": score, "mse": 1 / (2 * score)},
        dataset_hash=dataset_hash,
        params=10,
        seconds=0.1,
        runner="process",
    )


def finish(run: GradingRun, score: float, dataset_hash: str = DATA) -> None:
    claimed = regrade_run_claim(run.pk)
    assert claimed is not None, f"run {run.pk} was not queued"
    regrade_run_record_result(claimed, evaluation(score, dataset_hash))


def finish_all(batch: RegradeBatch, score: float, dataset_hash: str = DATA) -> None:
    for run in batch.runs.order_by("pk"):
        finish(run, score, dataset_hash)


def scores(challenge) -> list[float | None]:
    return [row.score for row in leaderboard_build(challenge).rows]


@pytest.fixture
def two(enrollment, other_student, challenge):
    return [
        graded(enrollment, challenge, 150.0),
        graded(other_student.enrollments.get(), challenge, 50.0),
    ]


def test_a_semester_closed_mid_batch_holds_it_until_reopened_and_published(
    two, challenge, semester, staff
):
    batch = regrade_batch_start(challenge, staff, "grader fix")
    first, second = batch.runs.order_by("pk")
    finish(first, 300.0)
    semester.closed = True
    semester.save()

    finish(second, 300.0)

    batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.COMPLETE
    assert "semester is closed" in batch.note
    assert sorted(scores(challenge)) == [50.0, 150.0]  # the final board stays final
    with pytest.raises(RegradeRefused, match="reopen it"):
        regrade_batch_publish(batch, staff)

    semester.closed = False
    semester.save()
    assert regrade_batch_publish(batch, staff) == 2

    batch.refresh_from_db()
    assert (batch.status, batch.published_by, batch.note) == (
        RegradeBatch.Status.PUBLISHED,
        staff,
        "",
    )
    assert scores(challenge) == [300.0, 300.0]
    assert "Published: 2 submission(s)" in LogEntry.objects.latest("pk").get_change_message()


def test_staff_publish_a_dry_run_once(two, challenge, staff):
    batch = regrade_batch_start(challenge, staff, "what if", dry_run=True)
    finish_all(batch, 0.5)  # below the fixture's threshold of 1
    batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.COMPLETE
    assert sorted(scores(challenge)) == [50.0, 150.0]

    regrade_batch_publish(batch, staff)

    assert scores(challenge) == [0.5, 0.5]
    assert set(Submission.objects.values_list("passed", flat=True)) == {False}
    with pytest.raises(RegradeRefused, match="already published"):
        regrade_batch_publish(batch, staff)


def test_it_refuses_to_publish_under_a_changed_threshold(two, challenge, staff):
    batch = regrade_batch_start(challenge, staff, "what if", dry_run=True)
    finish_all(batch, 120.0)
    challenge.threshold = 200.0
    challenge.save()

    with pytest.raises(RegradeRefused, match="threshold changed"):
        regrade_batch_publish(batch, staff)

    assert sorted(scores(challenge)) == [50.0, 150.0]


def test_it_never_brings_back_older_results(two, challenge, staff):
    older = regrade_batch_start(challenge, staff, "first idea", dry_run=True)
    newer = regrade_batch_start(challenge, staff, "better idea")
    finish_all(older, 10.0)
    finish_all(newer, 400.0)
    newer.refresh_from_db()
    assert newer.status == RegradeBatch.Status.PUBLISHED

    with pytest.raises(RegradeRefused, match=f"re-grade #{newer.pk}, started later"):
        regrade_batch_publish(older, staff)

    assert scores(challenge) == [400.0, 400.0]


def test_it_holds_a_batch_whose_attempts_saw_two_test_sets(two, challenge, staff):
    batch = regrade_batch_start(challenge, staff, "data swapped half-way")
    first, second = batch.runs.order_by("pk")
    finish(first, 300.0, dataset_hash="a" * 64)

    finish(second, 310.0, dataset_hash="b" * 64)

    batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.COMPLETE
    assert "test data changed" in batch.note
    assert sorted(scores(challenge)) == [50.0, 150.0]


def test_cancelling_stops_queued_attempts_and_never_publishes(
    two, challenge, staff, django_capture_on_commit_callbacks
):
    batch = regrade_batch_start(challenge, staff, "oops, wrong challenge")
    first, second = batch.runs.order_by("pk")
    running = regrade_run_claim(first.pk)
    assert running is not None

    assert regrade_batch_cancel(batch, staff, "wrong challenge") == 1
    # The attempt already running finishes and is recorded, but the batch no longer completes.
    regrade_run_record_result(running, evaluation(999.0))

    batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.CANCELLED
    assert "wrong challenge" in batch.note
    assert GradingRun.objects.get(pk=second.pk).outcome == GradingRun.Outcome.CANCELLED
    assert GradingRun.objects.get(pk=first.pk).outcome == GradingRun.Outcome.GRADED
    assert regrade_run_claim(second.pk) is None  # its message, if it arrives, does nothing
    assert sorted(scores(challenge)) == [50.0, 150.0]
    with pytest.raises(RegradeRefused, match="already published or cancelled"):
        regrade_batch_cancel(batch, staff)


# --- the sweep --------------------------------------------------------------------------------


def age(run: GradingRun, seconds: float) -> None:
    GradingRun.objects.filter(pk=run.pk).update(
        started_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_the_sweep_sends_a_lost_message_again(
    two, challenge, staff, settings, sent, django_capture_on_commit_callbacks
):
    batch = regrade_batch_start(challenge, staff, "lost message", submissions=two[:1])
    run = batch.runs.get()
    age(run, settings.GRADER_STUCK_QUEUED_SECONDS + 5)
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        report = submissions_sweep()

    assert report.runs.resent == [run.pk]
    assert [(m.name, m.args) for m in sent] == [(REGRADE_ATTEMPT, [run.pk])]
    with django_capture_on_commit_callbacks(execute=True):
        assert submissions_sweep().runs.resent == []  # just sent: not stale any more


def test_the_sweep_requeues_an_attempt_whose_worker_died_then_gives_up(
    two, challenge, staff, settings, sent, django_capture_on_commit_callbacks
):
    settings.GRADER_MAX_ATTEMPTS = 2
    _soft, hard = grading_time_limits(challenge)
    dead = hard + settings.GRADER_STUCK_RUNNING_GRACE_SECONDS + 5
    batch = regrade_batch_start(challenge, staff, "worker dies")
    first, second = batch.runs.order_by("pk")
    finish(second, 300.0)
    assert regrade_run_claim(first.pk) is not None
    age(first, dead)
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        report = submissions_sweep()

    first.refresh_from_db()
    assert report.runs.requeued == [first.pk]
    assert (first.outcome, first.attempt) == (GradingRun.Outcome.QUEUED, 1)
    assert [(m.name, m.args) for m in sent] == [(REGRADE_ATTEMPT, [first.pk])]

    # The next worker dies too: that was the last attempt, so it is lost and the batch completes.
    assert regrade_run_claim(first.pk) is not None
    age(first, dead)
    report = submissions_sweep()

    first.refresh_from_db()
    batch.refresh_from_db()
    assert report.runs.lost == [first.pk]
    assert first.outcome == GradingRun.Outcome.LOST
    assert batch.status == RegradeBatch.Status.PUBLISHED
    # The lost attempt's submission keeps its result; the other takes its new one.
    assert first.previous_score in (50.0, 150.0)
    assert sorted(scores(challenge)) == sorted([first.previous_score, 300.0])


def test_the_student_sees_that_their_result_was_regraded(
    client, two, challenge, staff, student, enrollment
):
    mine = next(s for s in two if s.enrollment_id == enrollment.pk)
    client.force_login(student)
    before = client.get(f"/submissions/{mine.pk}/").content.decode()
    batch = regrade_batch_start(challenge, staff, "internal: leaked test set")
    finish_all(batch, 0.5)

    after = client.get(f"/submissions/{mine.pk}/").content.decode()

    assert "Re-graded" not in before
    assert "the course staff graded this upload again" in after
    assert "before, it had a score of 150.00 (passed)" in after
    assert "Not passed" in after
    assert "leaked test set" not in after  # the reason is for staff


def test_whoever_started_it_hears_how_it_ended(
    two, challenge, semester, staff, django_capture_on_commit_callbacks
):
    from django.core import mail

    dry = regrade_batch_start(challenge, staff, "what if", dry_run=True)
    held = regrade_batch_start(challenge, staff, "after the deadline")
    with django_capture_on_commit_callbacks(execute=True):
        finish_all(dry, 300.0)
    semester.closed = True
    semester.save()
    with django_capture_on_commit_callbacks(execute=True):
        finish_all(held, 300.0)

    assert [m.to for m in mail.outbox] == [[staff.email], [staff.email]]
    first, second = (m.body for m in mail.outbox)
    assert (
        mail.outbox[0].subject
        == f"[{challenge.title}] Re-grade #{dry.pk}: Complete (not published)"
    )
    assert "2 of 2 graded, 0 failure(s), 2 submission(s) changed" in first
    assert "It was a dry run: nothing is published." in first
    assert f"http://testserver/staff/regrades/{dry.pk}/" in first
    assert "It is NOT published. Held back: the " in second
    assert "semester is closed" in second


def test_nobody_is_emailed_about_a_batch_started_from_a_shell(
    two, challenge, django_capture_on_commit_callbacks
):
    from django.core import mail

    batch = regrade_batch_start(challenge, None, "manage.py regrade")
    with django_capture_on_commit_callbacks(execute=True):
        finish_all(batch, 300.0)

    batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.PUBLISHED
    assert mail.outbox == []


def test_a_lost_attempt_does_not_tell_the_student_of_a_regrade(
    client, two, challenge, staff, student, enrollment, settings
):
    settings.GRADER_MAX_ATTEMPTS = 1
    _soft, hard = grading_time_limits(challenge)
    mine = next(s for s in two if s.enrollment_id == enrollment.pk)
    batch = regrade_batch_start(challenge, staff, "worker trouble")
    lost = batch.runs.get(submission=mine)
    assert regrade_run_claim(lost.pk) is not None
    finish(batch.runs.exclude(pk=lost.pk).get(), 300.0)
    age(lost, hard + settings.GRADER_STUCK_RUNNING_GRACE_SECONDS + 5)
    assert submissions_sweep().runs.lost == [lost.pk]  # its worker died: the batch completes
    batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.PUBLISHED
    client.force_login(student)

    page = client.get(f"/submissions/{mine.pk}/").content.decode()

    assert "Re-graded" not in page
    assert "150.00" in page
