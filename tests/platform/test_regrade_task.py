"""Re-grade attempts called directly (no worker, no eager mode) with a real ProcessRunner: the
board keeps the old results until the last attempt, dry runs never publish, the report after
the hidden data is swapped, and bit-identical scores on the same file and data."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core import mail

from grader.errors import PlatformError
from leaderboard.boards import board_version, leaderboard_build
from submissions.models import GradingRun, RegradeBatch, Submission
from submissions.regrade import RegradeRefused, regrade_batch_report, regrade_batch_start
from tests.platform.conftest import DATA_DIR, KEYPOINT_IMAGES, graded
from worker import grading
from worker.tasks import regrade_attempt

# Each test starts its grading runners anew (the settings they read change per test).
pytestmark = pytest.mark.usefixtures("fresh_runners")


@pytest.fixture
def hidden(settings, tmp_path) -> Path:
    """A test set of this test's own, so swapping it leaves the session's alone."""
    from eval_data import get_kind
    from eval_data.manifest import write_manifest

    settings.GRADER_DATA_ROOT = tmp_path / "hidden"
    folder = settings.GRADER_DATA_ROOT / DATA_DIR
    folder.mkdir(parents=True)
    get_kind("keypoints").synth(folder, KEYPOINT_IMAGES, 7)
    write_manifest(folder, "keypoints")
    return folder


def swap_data(folder: Path, seed: int) -> None:
    from eval_data import get_kind
    from eval_data.manifest import write_manifest

    get_kind("keypoints").synth(folder, KEYPOINT_IMAGES, seed)
    write_manifest(folder, "keypoints")


@pytest.fixture
def two(enrollment, other_student, challenge, tiny_models, hidden):
    """Two graded uploads of the all-zero model, with made-up old scores."""
    other = other_student.enrollments.get()
    content = tiny_models.zeros_bytes()
    return [
        graded(enrollment, challenge, 150.0, content=content),
        graded(other, challenge, 0.5, content=content),
    ]


def run_all(batch: RegradeBatch) -> None:
    for run_id in batch.runs.order_by("pk").values_list("pk", flat=True):
        regrade_attempt.run(run_id)


def board(challenge):
    return [(row.handle, row.score, row.passed) for row in leaderboard_build(challenge).rows]


@pytest.mark.slow  # over four seconds: grades through the sandbox
def test_it_publishes_only_when_the_last_attempt_finishes(
    two, challenge, staff, expected_zero_mse, django_capture_on_commit_callbacks
):
    before, version = board(challenge), board_version(challenge)
    batch = regrade_batch_start(challenge, staff, "threshold fixed")
    first, second = batch.runs.order_by("pk")

    with django_capture_on_commit_callbacks(execute=True):
        regrade_attempt.run(first.pk)

    first.refresh_from_db()
    assert first.outcome == GradingRun.Outcome.GRADED
    assert first.score == pytest.approx(1 / (2 * expected_zero_mse), rel=1e-6)
    assert len(first.dataset_hash) == 64
    assert board(challenge) == before
    assert board_version(challenge) == version
    batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.RUNNING

    with django_capture_on_commit_callbacks(execute=True):
        regrade_attempt.run(second.pk)

    batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.PUBLISHED
    assert batch.finished_at is not None
    assert board_version(challenge) != version
    for submission in two:
        submission.refresh_from_db()
        assert submission.status == Submission.Status.GRADED
        assert submission.score == first.score
        assert submission.passed is True
        assert submission.counts_for_quota is True
    assert {row[1] for row in board(challenge)} == {first.score}
    # Re-grades never email the students; the one who started it hears that it is published.
    assert [m.to for m in mail.outbox] == [[staff.email]]
    assert "It is published" in mail.outbox[0].body


def test_it_does_nothing_for_a_redelivered_message(two, challenge, staff):
    batch = regrade_batch_start(challenge, staff, "again", submissions=two[:1])
    run = batch.runs.get()
    regrade_attempt.run(run.pk)
    finished = GradingRun.objects.get(pk=run.pk).finished_at

    regrade_attempt.run(run.pk)

    assert GradingRun.objects.get(pk=run.pk).finished_at == finished


@pytest.mark.slow  # over four seconds: grades through the sandbox
def test_it_never_publishes_a_dry_run(two, challenge, staff):
    batch = regrade_batch_start(challenge, staff, "what if", dry_run=True)

    run_all(batch)

    batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.COMPLETE
    assert sorted(Submission.objects.values_list("score", flat=True)) == [0.5, 150.0]
    assert len(regrade_batch_report(batch)) == 2


@pytest.mark.slow  # over four seconds: grades through the sandbox
def test_it_reports_what_changed_after_the_hidden_data_is_swapped(
    two, challenge, staff, enrollment, tiny_models, hidden
):
    rejected = graded(enrollment, challenge, 2.0, content=tiny_models.wrong_shape.read_bytes())
    run_all(regrade_batch_start(challenge, staff, "first"))
    rejected.refresh_from_db()
    assert rejected.status == Submission.Status.FAILED
    swap_data(hidden, seed=8)

    batch = regrade_batch_start(challenge, staff, "new test set")
    run_all(batch)

    changes = regrade_batch_report(batch)
    # The rejected model stays rejected: not a change.
    assert {c.submission_id for c in changes} == {s.pk for s in two}
    by_handle = sorted(two, key=lambda s: s.enrollment.handle)
    for change, submission in zip(changes, by_handle, strict=True):
        submission.refresh_from_db()
        # "old" is what the first re-grade published; "new" is what the board shows now.
        assert change.old_score != change.new_score == submission.score
        assert change.username == submission.enrollment.user.username


@pytest.mark.slow  # over four seconds: grades through the sandbox
def test_it_scores_the_same_file_on_the_same_data_bit_identically(two, challenge, staff):
    first = regrade_batch_start(challenge, staff, "once")
    run_all(first)
    second = regrade_batch_start(challenge, staff, "twice")

    run_all(second)

    scores = [
        list(b.runs.order_by("submission__created_at").values_list("score", flat=True))
        for b in (first, second)
    ]
    assert scores[0] == scores[1]
    assert all(isinstance(score, float) for score in scores[1])
    assert regrade_batch_report(second) == []


def test_it_refuses_a_closed_semester(two, challenge, staff, semester):
    semester.closed = True
    semester.save()

    with pytest.raises(RegradeRefused, match="closed"):
        regrade_batch_start(challenge, staff, "too late")


class BrokenHost:
    name = "broken"

    def predict(self, *args, **kwargs):
        raise PlatformError("sandbox_unavailable", "no sandbox here", "bwrap: not found")


def test_it_requeues_the_attempt_on_a_platform_error(two, challenge, staff, monkeypatch):
    monkeypatch.setattr(grading, "get_runner", lambda: BrokenHost())
    batch = regrade_batch_start(challenge, staff, "broken host", submissions=two[:1])
    run = batch.runs.get()

    # Called directly, Celery's retry re-raises the error instead of sending a message.
    with pytest.raises(PlatformError):
        regrade_attempt.run(run.pk)

    run.refresh_from_db()
    assert run.outcome == GradingRun.Outcome.QUEUED
    assert run.error_code == "sandbox_unavailable"
    batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.RUNNING


def test_it_gives_up_after_the_last_retry_and_keeps_the_old_result(
    two, challenge, staff, monkeypatch
):
    monkeypatch.setattr(grading, "get_runner", lambda: BrokenHost())
    monkeypatch.setattr(regrade_attempt, "max_retries", 1)
    batch = regrade_batch_start(challenge, staff, "broken host", submissions=two[:1])

    regrade_attempt.apply(args=[batch.runs.get().pk])

    batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.PUBLISHED
    assert batch.runs.get().outcome == GradingRun.Outcome.PLATFORM_ERROR
    two[0].refresh_from_db()
    assert two[0].score == 150.0
