"""The state machine of a submission, of its grading runs and of a re-grade attempt, as tables
of allowed and refused transitions: each transition is a conditional update that names the state
it leaves (and the attempt that holds the claim)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from submissions import lifecycle
from submissions.models import GradingRun, RegradeBatch, Submission
from tests.platform.conftest import make_submission

S = Submission.Status
O = GradingRun.Outcome  # noqa: E741


def _claim(s: Submission) -> bool:
    return lifecycle.claim(s.pk) is not None


def _graded(s: Submission) -> bool:
    return lifecycle.finish(s, score=150.0, passed=True, metrics={"score": 150.0})


def _rejected(s: Submission) -> bool:
    return lifecycle.finish(s, error="your model said no")


def _requeue(s: Submission) -> bool:
    return lifecycle.requeue(s)


def _give_up(s: Submission) -> bool:
    return lifecycle.give_up(s)


def _resend(s: Submission) -> bool:
    return lifecycle.resend(s, timezone.now())


def _takeover(s: Submission) -> bool:
    return lifecycle.takeover(s.pk, s.attempts) is not None


def _mark_unsent(s: Submission) -> bool:
    return lifecycle.mark_unsent(s.pk)


def _publish(s: Submission) -> bool:
    return lifecycle.publish(s.pk, {"status": S.GRADED, "score": 99.0, "passed": False})


TRANSITIONS: dict[str, Callable[[Submission], bool]] = {
    "claim": _claim,
    "finish graded": _graded,
    "finish failed": _rejected,
    "requeue": _requeue,
    "give up": _give_up,
    "resend": _resend,
    "takeover": _takeover,
    "mark unsent": _mark_unsent,
    "publish": _publish,
}

#: (transition, from) -> the status it leads to; every pair not listed must be refused
ALLOWED = {
    ("claim", S.QUEUED): S.RUNNING,
    ("finish graded", S.RUNNING): S.GRADED,
    ("finish failed", S.RUNNING): S.FAILED,
    ("requeue", S.RUNNING): S.QUEUED,
    ("give up", S.RUNNING): S.FAILED,
    ("resend", S.QUEUED): S.QUEUED,
    ("takeover", S.RUNNING): S.RUNNING,
    ("mark unsent", S.QUEUED): S.QUEUED,
    ("publish", S.GRADED): S.GRADED,
    ("publish", S.FAILED): S.GRADED,
}


def in_state(enrollment: Any, challenge: Any, status: str) -> Submission:
    fields: dict[str, Any] = {"status": status}
    if status == S.RUNNING:
        fields.update(attempts=1, started_at=timezone.now())
    if status == S.GRADED:
        fields.update(score=120.0, passed=True, metrics={"score": 120.0})
    if status == S.FAILED:
        fields.update(error="before")
    return make_submission(enrollment, challenge, **fields)


@pytest.mark.parametrize("status", [S.QUEUED, S.RUNNING, S.GRADED, S.FAILED])
@pytest.mark.parametrize("transition", list(TRANSITIONS))
def test_it_allows_exactly_the_listed_transitions(enrollment, challenge, transition, status):
    submission = in_state(enrollment, challenge, status)

    happened = TRANSITIONS[transition](submission)

    expected = ALLOWED.get((transition, status))
    assert happened is (expected is not None)
    submission.refresh_from_db()
    assert submission.status == (expected or status)


def test_it_lets_only_the_attempt_holding_the_claim_finish(enrollment, challenge):
    submission = make_submission(enrollment, challenge)
    first = lifecycle.claim(submission.pk)
    assert first is not None and first.attempts == 1
    # The sweep re-queued it (the worker looked dead) and another worker claimed it since.
    assert lifecycle.requeue(first)
    second = lifecycle.claim(submission.pk)
    assert second is not None and second.attempts == 2
    first.status = S.RUNNING  # as the first worker still believes

    assert not lifecycle.finish(first, error="late news")
    assert lifecycle.finish(second, score=130.0, passed=True, metrics={"score": 130.0})
    submission.refresh_from_db()
    assert (submission.status, submission.score, submission.error) == (S.GRADED, 130.0, "")


def test_it_claims_nothing_for_an_unknown_or_malformed_id(db):
    assert lifecycle.claim("00000000-0000-0000-0000-000000000000") is None
    assert lifecycle.claim("not-a-uuid") is None


def test_it_lets_only_one_of_two_messages_take_a_dead_claim_over(enrollment, challenge):
    submission = in_state(enrollment, challenge, S.RUNNING)

    taken = lifecycle.takeover(submission.pk, 1)
    assert taken is not None and taken.attempts == 2
    assert lifecycle.takeover(submission.pk, 1) is None
    # The dead holder's attempt can no longer finish it.
    assert not lifecycle.finish(submission, error="late news")


def test_resending_clears_the_unsent_mark(enrollment, challenge):
    submission = make_submission(enrollment, challenge)
    assert lifecycle.mark_unsent(submission.pk)
    submission.refresh_from_db()
    assert submission.unsent

    assert lifecycle.resend(submission, timezone.now())

    submission.refresh_from_db()
    assert not submission.unsent


def test_two_sweeps_resend_once(enrollment, challenge):
    submission = make_submission(enrollment, challenge)
    stale_copy = Submission.objects.get(pk=submission.pk)

    assert lifecycle.resend(submission, timezone.now())
    assert not lifecycle.resend(stale_copy, timezone.now())


def test_giving_up_frees_the_quota_and_says_why(enrollment, challenge):
    submission = in_state(enrollment, challenge, S.RUNNING)

    assert lifecycle.give_up(submission)

    submission.refresh_from_db()
    assert submission.counts_for_quota is False
    assert submission.error == lifecycle.GAVE_UP_MESSAGE


def test_finishing_refreshes_the_standing(enrollment, challenge):
    from submissions.models import Standing

    submission = in_state(enrollment, challenge, S.RUNNING)

    assert lifecycle.finish(submission, score=150.0, passed=True, metrics={"score": 150.0})

    standing = Standing.objects.get(enrollment=enrollment, challenge=challenge)
    assert (standing.best_id, standing.score, standing.passed) == (submission.pk, 150.0, True)


# --- a submission's own grading run ----------------------------------------------------------


def _own_close(r: GradingRun) -> bool:
    return lifecycle.run_close(r, O.GRADED, score=1.0)


def _own_close_lost(r: GradingRun) -> bool:
    """A re-delivered message took the claim over from a dead holder."""
    return lifecycle.run_close(r, O.LOST, error_code="lost")


def _own_close_earlier(r: GradingRun) -> bool:
    """A worker that believes it still holds an earlier attempt."""
    r.attempt -= 1
    return lifecycle.run_close(r, O.GRADED, score=1.0)


def _abandon_lost(r: GradingRun) -> bool:
    return lifecycle.run_abandon(r.submission, O.LOST, timezone.now(), error_code="lost")


def _abandon_no_result(r: GradingRun) -> bool:
    return lifecycle.run_abandon(r.submission, O.PLATFORM_ERROR, timezone.now())


def _abandon_earlier(r: GradingRun) -> bool:
    """The sweep read the submission before another attempt claimed it."""
    r.submission.attempts -= 1
    return lifecycle.run_abandon(r.submission, O.LOST, timezone.now())


OWN_RUN_TRANSITIONS: dict[str, Callable[[GradingRun], bool]] = {
    "close": _own_close,
    "close lost": _own_close_lost,
    "close as an earlier attempt": _own_close_earlier,
    "abandon lost": _abandon_lost,
    "abandon no result": _abandon_no_result,
    "abandon an earlier attempt": _abandon_earlier,
}

OWN_RUN_ALLOWED = {
    ("close", O.RUNNING): O.GRADED,
    ("close lost", O.RUNNING): O.LOST,
    ("abandon lost", O.RUNNING): O.LOST,
    ("abandon no result", O.RUNNING): O.PLATFORM_ERROR,
}


@pytest.mark.parametrize("outcome", list(O))
@pytest.mark.parametrize("transition", list(OWN_RUN_TRANSITIONS))
def test_it_allows_exactly_the_listed_run_transitions(enrollment, challenge, transition, outcome):
    submission = make_submission(
        enrollment, challenge, status=S.RUNNING, attempts=2, started_at=timezone.now()
    )
    run = GradingRun.objects.create(submission=submission, attempt=2, outcome=outcome)
    finished_at = run.finished_at

    happened = OWN_RUN_TRANSITIONS[transition](run)

    expected = OWN_RUN_ALLOWED.get((transition, outcome))
    assert happened is (expected is not None)
    run.refresh_from_db()
    assert run.outcome == (expected or outcome)
    assert (run.finished_at is not None) if expected else run.finished_at == finished_at


def test_the_sweep_abandons_no_regrade_attempt_of_the_submission(enrollment, challenge):
    submission = in_state(enrollment, challenge, S.RUNNING)
    batch = RegradeBatch.objects.create(challenge=challenge, reason="test", total=1)
    attempt = GradingRun.objects.create(
        submission=submission, batch=batch, attempt=1, outcome=O.RUNNING
    )

    assert not lifecycle.run_abandon(submission, O.LOST, timezone.now())

    attempt.refresh_from_db()
    assert attempt.outcome == O.RUNNING


# --- a re-grade attempt -----------------------------------------------------------------------


def _run_claim(r: GradingRun) -> bool:
    return lifecycle.run_claim(r.pk) is not None


def _run_close(r: GradingRun) -> bool:
    return lifecycle.run_close(r, O.GRADED, score=1.0)


def _run_close_earlier(r: GradingRun) -> bool:
    """The worker of an attempt the sweep re-queued, coming back after another took it."""
    r.attempt -= 1
    return lifecycle.run_close(r, O.GRADED, score=1.0)


def _run_requeue(r: GradingRun) -> bool:
    return lifecycle.run_requeue(r, attempt=r.attempt + 1)


def _run_requeue_earlier(r: GradingRun) -> bool:
    """The task's retry of an attempt the sweep re-queued and another worker took since."""
    r.attempt -= 1
    return lifecycle.run_requeue(r)


def _run_resend(r: GradingRun) -> bool:
    return lifecycle.run_resend(r, timezone.now())


def _run_takeover(r: GradingRun) -> bool:
    return lifecycle.run_takeover(r.pk, r.worker_name, worker_name="new:2") is not None


def _run_mark_unsent(r: GradingRun) -> bool:
    return lifecycle.run_mark_unsent(r.pk)


def _runs_cancel(r: GradingRun) -> bool:
    assert r.batch_id is not None
    return lifecycle.runs_cancel(r.batch_id, timezone.now()) == 1


RUN_TRANSITIONS: dict[str, Callable[[GradingRun], bool]] = {
    "claim": _run_claim,
    "close": _run_close,
    "close as an earlier attempt": _run_close_earlier,
    "requeue": _run_requeue,
    "requeue as an earlier attempt": _run_requeue_earlier,
    "resend": _run_resend,
    "takeover": _run_takeover,
    "mark unsent": _run_mark_unsent,
    "cancel": _runs_cancel,
}

RUN_ALLOWED = {
    ("claim", O.QUEUED): O.RUNNING,
    ("close", O.RUNNING): O.GRADED,
    ("requeue", O.RUNNING): O.QUEUED,
    ("resend", O.QUEUED): O.QUEUED,
    ("takeover", O.RUNNING): O.RUNNING,
    ("mark unsent", O.QUEUED): O.QUEUED,
    ("cancel", O.QUEUED): O.CANCELLED,
}


@pytest.mark.parametrize("outcome", list(O))
@pytest.mark.parametrize("transition", list(RUN_TRANSITIONS))
def test_it_allows_exactly_the_listed_attempt_transitions(
    enrollment, challenge, transition, outcome
):
    submission = in_state(enrollment, challenge, S.GRADED)
    batch = RegradeBatch.objects.create(challenge=challenge, reason="test", total=1)
    run = GradingRun.objects.create(
        submission=submission, batch=batch, attempt=1, outcome=outcome, worker_name="dead:1"
    )

    happened = RUN_TRANSITIONS[transition](run)

    expected = RUN_ALLOWED.get((transition, outcome))
    assert happened is (expected is not None)
    run.refresh_from_db()
    assert run.outcome == (expected or outcome)


def test_it_claims_no_run_outside_a_batch(enrollment, challenge):
    submission = in_state(enrollment, challenge, S.RUNNING)
    run = GradingRun.objects.create(submission=submission, attempt=1, outcome=O.QUEUED)

    assert lifecycle.run_claim(run.pk) is None
