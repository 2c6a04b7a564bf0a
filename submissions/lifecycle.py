"""The state machine of a submission, of its grading runs, and of a re-grade attempt: every
status change of a submission and every outcome change of a run is here.

A submission::

    queued ──claim──▶ running ──finish──▶ graded | failed
      ▲  │               │ ▲
      │  ├──resend       │ └──takeover            (a re-delivered message; the holder is dead)
      │  └──mark_unsent  ├──requeue──▶ queued     (platform error to retry, worker gone)
      └──────────────────┘
                         └──give_up──▶ failed     (no attempts left; not counted in the quota)

    graded | failed ──publish──▶ graded | failed  (a published re-grade)

A grading run (one attempt of a submission's own grading, created ``running`` in the claim's
transaction)::

    running ──close────▶ graded | rejected | platform_error  (the worker's outcome)
       ├──────close────▶ lost                    (a re-delivered message took the claim over)
       └──────abandon──▶ lost | platform_error   (the sweep moved the submission on)

A re-grade attempt (a ``GradingRun`` with a batch)::

    queued ──claim──▶ running ──close──▶ graded | rejected | platform_error | lost
      │  ├──resend       │ ▲
      │  └──mark_unsent  │ └──takeover                  (a re-delivered message; the holder is dead)
      │                  └──requeue──▶ queued           (as the next attempt, if the sweep did it)
      └──cancel──▶ cancelled

Each transition is one conditional ``UPDATE``: it names the state it leaves (and, for a running
submission or run, the attempt that holds the claim), and returns whether it happened. So a
message delivered twice, a sweep racing a worker, or two workers finishing the same claim can
never both win: the loser's update matches no row. A worker that finishes after its attempt was
closed without it (recorded lost, re-queued, taken over) changes no state: what it found is
kept in the run's staff log only (``results.run_note_late``). A running submission and its
run move together, the submission first: whoever moved the claim on closes the run in the
same transaction. Transitions that change what a student's standing depends on refresh it in
the same transaction.

Creating a row is not a transition: an upload is created ``queued``, a run ``running`` (by the
claim) or ``queued`` (a re-grade attempt). The one row born finished is written here: the run
of an attempt whose claim never opened one (``run_lost_unopened``). ``tests/test_structure.py``
finds any other write of a submission's status or a run's outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from submissions.models import GradingRun, Submission
from submissions.standings import standing_refresh

Status = Submission.Status
Outcome = GradingRun.Outcome

#: what a student reads when the platform gave up on their upload
GAVE_UP_MESSAGE = (
    "Grading could not be completed because of a problem on our side; staff have been notified."
    " This upload does not count against your quota: please upload it again."
)


# --- a submission -----------------------------------------------------------------------------


def claim(submission_id: Any, now: datetime | None = None) -> Submission | None:
    """queued → running, as the next attempt; None if it is not queued (a re-delivered message,
    another worker got it first, or no such submission)."""
    try:
        updated = Submission.objects.filter(pk=submission_id, status=Status.QUEUED).update(
            status=Status.RUNNING,
            started_at=now or timezone.now(),
            finished_at=None,
            attempts=F("attempts") + 1,
        )
    except ValidationError:  # not a UUID
        return None
    if not updated:
        return None
    return Submission.objects.select_related("challenge__semester__course", "enrollment__user").get(
        pk=submission_id
    )


def takeover(submission_id: Any, attempts: int, now: datetime | None = None) -> Submission | None:
    """running → running as the next attempt, for a re-delivered message whose claim's holder
    is dead (the caller checked its heartbeat): only if ``attempts`` still holds the claim, so
    of two messages, or a message and the sweep, one wins."""
    try:
        updated = Submission.objects.filter(
            pk=submission_id, status=Status.RUNNING, attempts=attempts
        ).update(started_at=now or timezone.now(), attempts=F("attempts") + 1)
    except ValidationError:  # not a UUID
        return None
    if not updated:
        return None
    return Submission.objects.select_related("challenge__semester__course", "enrollment__user").get(
        pk=submission_id
    )


def mark_unsent(submission_id: Any) -> bool:
    """queued → queued, marked for the next sweep to send at once: its message failed."""
    return bool(
        Submission.objects.filter(pk=submission_id, status=Status.QUEUED).update(unsent=True)
    )


def _from_running(submission: Submission, **fields: Any) -> bool:
    """Leave ``running`` if this attempt still holds the claim; refresh the standing."""
    with transaction.atomic():
        updated = Submission.objects.filter(
            pk=submission.pk, status=Status.RUNNING, attempts=submission.attempts
        ).update(**fields)
        if updated:
            standing_refresh(submission.enrollment_id, submission.challenge_id)
    if updated:
        for name, value in fields.items():
            setattr(submission, name, value)
    return bool(updated)


def finish(
    submission: Submission,
    *,
    score: float | None = None,
    passed: bool | None = None,
    metrics: dict[str, Any] | None = None,
    error: str = "",
    now: datetime | None = None,
) -> bool:
    """running → graded (with a score), or → failed with ``error`` (the model's fault)."""
    if error:
        fields: dict[str, Any] = {"status": Status.FAILED, "error": error, "score": None}
        fields["passed"] = None
    else:
        fields = {"status": Status.GRADED, "score": score, "passed": passed, "error": ""}
        fields["metrics"] = metrics or {}
    return _from_running(submission, finished_at=now or timezone.now(), **fields)


def requeue(submission: Submission, now: datetime | None = None) -> bool:
    """running → queued, for another attempt (a platform error to retry, a worker gone)."""
    now = now or timezone.now()
    return _from_running(submission, status=Status.QUEUED, started_at=None, queued_at=now)


def give_up(submission: Submission, now: datetime | None = None) -> bool:
    """running → failed for good, without counting against the quota."""
    return _from_running(
        submission,
        status=Status.FAILED,
        error=GAVE_UP_MESSAGE,
        counts_for_quota=False,
        finished_at=now or timezone.now(),
    )


def resend(submission: Submission, now: datetime) -> bool:
    """queued → queued with a new ``queued_at``, if nobody changed it since it was read: of two
    sweeps, only one sends the message again."""
    return bool(
        Submission.objects.filter(
            pk=submission.pk, status=Status.QUEUED, queued_at=submission.queued_at
        ).update(queued_at=now, unsent=False)
    )


FINISHED = (Status.GRADED, Status.FAILED)


def publish(submission_id: Any, fields: dict[str, Any]) -> bool:
    """graded | failed → graded | failed: a published re-grade's result. The caller refreshes
    the standings of the whole batch at once."""
    assert fields.get("status") in FINISHED
    return bool(Submission.objects.filter(pk=submission_id, status__in=FINISHED).update(**fields))


# --- a grading run (a submission's own, or a re-grade attempt) -------------------------------

#: where a running attempt may end
RUN_ENDS = (Outcome.GRADED, Outcome.REJECTED, Outcome.PLATFORM_ERROR, Outcome.LOST)


def run_close(run: GradingRun, outcome: str, **fields: Any) -> bool:
    """running → graded | rejected | platform_error | lost, with its figures: only while
    ``run.attempt`` is still the attempt running, so a worker that comes back after its attempt
    was recorded lost, or re-queued and taken by another, changes nothing."""
    assert outcome in RUN_ENDS
    fields = {"outcome": outcome, "finished_at": timezone.now(), **fields}
    return bool(
        GradingRun.objects.filter(pk=run.pk, outcome=Outcome.RUNNING, attempt=run.attempt).update(
            **fields
        )
    )


#: how the sweep may record an attempt it gave up waiting for
ABANDONED = (Outcome.LOST, Outcome.PLATFORM_ERROR)


def run_abandon(submission: Submission, outcome: str, now: datetime, **fields: Any) -> bool:
    """running → lost | platform_error for the run of the attempt that held ``submission``'s
    claim (``submission.attempts``), which the sweep just moved on in the same transaction."""
    assert outcome in ABANDONED
    return bool(
        GradingRun.objects.filter(
            # A re-grade attempt of the same submission is not this claim's run.
            submission_id=submission.pk,
            batch__isnull=True,
            attempt=submission.attempts,
            outcome=Outcome.RUNNING,
        ).update(outcome=outcome, finished_at=now, **fields)
    )


def run_lost_unopened(
    submission: Submission, outcome: str, now: datetime, **fields: Any
) -> GradingRun:
    """Not a transition: the run of an attempt whose worker died before it opened one (the
    claim and the run are one transaction today; rows claimed before that have none), written
    as the sweep recorded it, so every attempt has its run."""
    assert outcome in ABANDONED
    return GradingRun.objects.create(
        submission=submission,
        attempt=submission.attempts,
        started_at=submission.started_at or now,
        finished_at=now,
        outcome=outcome,
        **fields,
    )


# --- a re-grade attempt -----------------------------------------------------------------------


def run_claim(
    run_id: int, now: datetime | None = None, *, worker_name: str = ""
) -> GradingRun | None:
    """queued → running, held by ``worker_name``; None if it is not a queued re-grade
    attempt."""
    updated = GradingRun.objects.filter(
        pk=run_id, batch__isnull=False, outcome=Outcome.QUEUED
    ).update(outcome=Outcome.RUNNING, started_at=now or timezone.now(), worker_name=worker_name)
    if not updated:
        return None
    return GradingRun.objects.select_related("batch", "submission__challenge").get(pk=run_id)


def run_requeue(run: GradingRun, *, if_started_at: datetime | None = None, **fields: Any) -> bool:
    """running → queued, for the task's retry or the sweep's, while ``run.attempt`` is still the
    attempt running. With ``if_started_at``: only if the attempt still started then (of two
    sweeps, one wins)."""
    match: dict[str, Any] = {"pk": run.pk, "outcome": Outcome.RUNNING, "attempt": run.attempt}
    if if_started_at is not None:
        match["started_at"] = if_started_at
    return bool(GradingRun.objects.filter(**match).update(outcome=Outcome.QUEUED, **fields))


def run_takeover(
    run_id: int, dead: str, now: datetime | None = None, *, worker_name: str = ""
) -> GradingRun | None:
    """running → running held by ``worker_name``, for a re-delivered message whose claim's
    holder ``dead`` is dead (the caller checked its heartbeat); one of two takers wins."""
    updated = GradingRun.objects.filter(
        pk=run_id, batch__isnull=False, outcome=Outcome.RUNNING, worker_name=dead
    ).update(started_at=now or timezone.now(), attempt=F("attempt") + 1, worker_name=worker_name)
    if not updated:
        return None
    return GradingRun.objects.select_related("batch", "submission__challenge").get(pk=run_id)


def run_mark_unsent(run_id: int) -> bool:
    """queued → queued, marked for the next sweep to send at once: its message failed."""
    return bool(GradingRun.objects.filter(pk=run_id, outcome=Outcome.QUEUED).update(unsent=True))


def run_resend(run: GradingRun, now: datetime) -> bool:
    """queued → queued with a new ``started_at``, if unchanged since read (one sweep sends)."""
    return bool(
        GradingRun.objects.filter(
            pk=run.pk, outcome=Outcome.QUEUED, started_at=run.started_at
        ).update(started_at=now, unsent=False)
    )


def runs_cancel(batch_id: int, now: datetime) -> int:
    """queued → cancelled for every attempt of a batch no worker has taken yet."""
    return GradingRun.objects.filter(batch_id=batch_id, outcome=Outcome.QUEUED).update(
        outcome=Outcome.CANCELLED, finished_at=now
    )
