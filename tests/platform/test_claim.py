"""Claiming a submission with a conditional update, and recording only by the claim holder."""

from __future__ import annotations

from grader.errors import GradingError
from submissions.models import GradingRun, Submission
from submissions.services import (
    grading_run_start,
    submission_claim,
    submission_record_rejection,
)
from tests.platform.conftest import make_submission


def test_it_claims_a_queued_submission(enrollment, challenge):
    submission = make_submission(enrollment, challenge)

    claimed = submission_claim(str(submission.pk))

    assert claimed is not None
    assert claimed.status == Submission.Status.RUNNING
    assert claimed.attempts == 1
    assert claimed.started_at is not None


def test_it_claims_nothing_the_second_time(enrollment, challenge):
    submission = make_submission(enrollment, challenge)
    assert submission_claim(str(submission.pk)) is not None

    assert submission_claim(str(submission.pk)) is None
    submission.refresh_from_db()
    assert submission.attempts == 1


def test_it_claims_nothing_that_is_finished(enrollment, challenge):
    submission = make_submission(enrollment, challenge, status=Submission.Status.GRADED)

    assert submission_claim(str(submission.pk)) is None


def test_it_claims_nothing_for_an_unknown_or_malformed_id(db):
    assert submission_claim("00000000-0000-0000-0000-000000000000") is None
    assert submission_claim("not-a-uuid") is None


def test_it_drops_the_outcome_of_an_attempt_that_lost_its_claim(enrollment, challenge):
    submission = make_submission(enrollment, challenge)
    first = submission_claim(str(submission.pk))
    assert first is not None
    run = grading_run_start(first, worker_host="a", device="cpu", torch_version="x", runner="p")
    # The sweep gave the attempt up and another worker claimed the submission since.
    Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.QUEUED)
    second = submission_claim(str(submission.pk))
    assert second is not None and second.attempts == 2

    recorded = submission_record_rejection(first, run, GradingError("x", "late news"))

    assert recorded is False
    submission.refresh_from_db()
    assert submission.status == Submission.Status.RUNNING
    assert submission.error == ""
    assert GradingRun.objects.get(pk=run.pk).outcome == GradingRun.Outcome.REJECTED
