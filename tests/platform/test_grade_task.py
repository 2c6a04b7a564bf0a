"""The grading task called directly (no worker, no eager mode): real grading of tiny models
through a plain child process, rejections, platform errors and retries."""

from __future__ import annotations

import math

import pytest
from django.core import mail

from grader.errors import PlatformError
from submissions.lifecycle import GAVE_UP_MESSAGE
from submissions.models import GradingRun, Submission
from submissions.sweep import submissions_sweep
from tests.platform.conftest import make_submission
from worker import grading, tasks
from worker.tasks import grade_submission

# Each test starts its grading runners anew (the settings they read change per test).
pytestmark = pytest.mark.usefixtures("fresh_runners")


@pytest.fixture
def submit(enrollment, challenge, tiny_models):
    def submit(path=None) -> Submission:
        content = (path or tiny_models.zeros).read_bytes()
        return make_submission(enrollment, challenge, content=content)

    return submit


def test_it_grades_a_model_and_records_the_run(
    submit, expected_zero_mse, django_capture_on_commit_callbacks
):
    submission = submit()

    with django_capture_on_commit_callbacks(execute=True):
        grade_submission.run(str(submission.pk))

    submission.refresh_from_db()
    assert submission.status == Submission.Status.GRADED
    assert submission.metrics["mse"] == pytest.approx(expected_zero_mse, abs=1e-6)
    assert submission.score == pytest.approx(1 / (2 * expected_zero_mse), rel=1e-6)
    assert submission.passed is True
    assert submission.error == ""
    assert submission.finished_at is not None
    run = submission.runs.get()
    assert run.outcome == GradingRun.Outcome.GRADED
    assert run.runner == "process"
    assert run.device == "cpu"
    assert run.torch_version
    assert len(run.dataset_hash) == 64
    assert run.score == submission.score
    # The student hears about it by email.
    assert len(mail.outbox) == 1
    assert "passed" in mail.outbox[0].subject
    assert f"/submissions/{submission.pk}/" in mail.outbox[0].body


def test_it_does_nothing_for_a_redelivered_message(submit):
    submission = submit()
    grade_submission.run(str(submission.pk))

    grade_submission.run(str(submission.pk))

    assert GradingRun.objects.filter(submission=submission).count() == 1


def test_it_fails_a_model_with_the_wrong_output_and_says_why(
    submit, tiny_models, django_capture_on_commit_callbacks
):
    submission = submit(tiny_models.wrong_shape)

    with django_capture_on_commit_callbacks(execute=True):
        grade_submission.run(str(submission.pk))

    submission.refresh_from_db()
    assert submission.status == Submission.Status.FAILED
    assert "30 values per image" in submission.error
    assert submission.counts_for_quota is True
    run = submission.runs.get()
    assert run.outcome == GradingRun.Outcome.REJECTED
    assert run.error_code == "output_shape"
    assert "failed" in mail.outbox[0].subject


class BrokenHost:
    name = "broken"

    def predict(self, *args, **kwargs):
        raise PlatformError("sandbox_unavailable", "no sandbox here", "bwrap: not found")


def test_it_requeues_on_a_platform_error_without_counting_it(submit, monkeypatch):
    monkeypatch.setattr(grading, "get_runner", lambda: BrokenHost())
    submission = submit()

    # Called directly, Celery's retry re-raises the error instead of sending a message.
    with pytest.raises(PlatformError):
        grade_submission.run(str(submission.pk))

    submission.refresh_from_db()
    assert submission.status == Submission.Status.QUEUED
    assert submission.error == ""
    run = submission.runs.get()
    assert run.outcome == GradingRun.Outcome.PLATFORM_ERROR
    assert run.error_code == "sandbox_unavailable"
    assert "bwrap: not found" in run.log


class StalledHost:
    """A host that stalls long enough for the sweep to take the work back, then fails."""

    name = "stalled"

    def predict(self, *args, **kwargs):
        # No heartbeat row names this test's worker: to the sweep it is dead.
        submissions_sweep()
        raise PlatformError("sandbox_failed", "the sandbox stopped", "killed")


def test_it_neither_records_nor_retries_an_attempt_the_sweep_took_back(submit, monkeypatch):
    monkeypatch.setattr(grading, "get_runner", lambda: StalledHost())
    submission = submit()

    grade_submission.run(str(submission.pk))  # no retry: the sweep queued the work again

    submission.refresh_from_db()
    assert (submission.status, submission.attempts) == (Submission.Status.QUEUED, 1)
    run = submission.runs.get()
    assert (run.outcome, run.error_code) == (GradingRun.Outcome.LOST, "lost")
    assert "a late result arrived" in run.log
    assert "platform error (retried): sandbox_failed — not counted" in run.log


def test_it_gives_up_after_the_last_retry_without_counting_it(
    submit, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(grading, "get_runner", lambda: BrokenHost())
    monkeypatch.setattr(grade_submission, "max_retries", 2)
    submission = submit()

    # apply() runs in this process and retries in place (no broker, no countdown).
    with django_capture_on_commit_callbacks(execute=True):
        grade_submission.apply(args=[str(submission.pk)])

    submission.refresh_from_db()
    assert submission.status == Submission.Status.FAILED
    assert submission.error == GAVE_UP_MESSAGE
    assert submission.counts_for_quota is False
    assert submission.attempts == 3
    outcomes = list(submission.runs.values_list("outcome", flat=True))
    assert outcomes == [GradingRun.Outcome.PLATFORM_ERROR] * 3
    assert "staff have been notified" in mail.outbox[0].body


def test_it_treats_a_missing_test_set_as_a_platform_error(submit, challenge):
    challenge.data_dir = "no/such/folder"
    challenge.save()
    submission = submit()

    with pytest.raises(PlatformError):
        grade_submission.run(str(submission.pk))

    run = submission.runs.get()
    assert run.outcome == GradingRun.Outcome.PLATFORM_ERROR
    assert run.error_code == "dataset"


def test_it_backs_off_exponentially(settings):
    settings.GRADER_RETRY_BACKOFF_SECONDS = 30

    assert [tasks.retry_countdown(n) for n in range(3)] == [30, 60, 120]


def test_it_asks_for_the_sandbox_when_grader_sandbox_is_on(settings, monkeypatch):
    calls = []
    monkeypatch.setattr(
        grading,
        "make_runner",
        lambda sandboxed, uid, gpu: calls.append((sandboxed, uid, gpu)) or object(),
    )
    settings.GRADER_SANDBOX = True
    settings.GRADER_SANDBOX_UID = 65000
    settings.GRADER_DEVICE = "cuda:2"

    grading.get_runner()

    # The worker's GPU is bound into the sandbox from the start, so the first job starts warm.
    assert calls == [(True, 65000, 2)]


def test_each_pool_process_gets_its_own_sandbox_uid(settings, monkeypatch):
    from billiard.process import current_process

    settings.GRADER_SANDBOX_UID = 65534
    main = grading.sandbox_uid()
    monkeypatch.setattr(current_process(), "index", 3, raising=False)

    assert (main, grading.sandbox_uid()) == (65534, 65531)
    settings.GRADER_SANDBOX_UID = 1002
    with pytest.raises(PlatformError) as refused:
        grading.sandbox_uid()
    assert "leaves pool process 3 the uid 999" in refused.value.detail


def test_it_keeps_an_infinite_score(enrollment, challenge):
    from tests.platform.conftest import graded

    submission = graded(enrollment, challenge, math.inf)
    submission.refresh_from_db()

    assert math.isinf(submission.score)
