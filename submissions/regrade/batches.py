"""Re-grade batches: start, complete, publish or hold, cancel, report, tell whoever started them.

A batch's attempts write only to their ``GradingRun``. When the last one finishes the batch is
complete and, unless it is a dry run, published: every submission takes its new result in one
transaction, so the leaderboard never shows a half re-graded challenge. Re-grades never count
against a quota and never email the student.

The life of a batch::

    running ──last attempt──▶ complete ──publish──▶ published
       │                         │   (automatic unless a dry run, or held: the semester closed,
       └────────cancel───────────┴──▶ cancelled      the rules changed, newer results exist)

A complete batch (a dry run, or one held back) is published by staff from the admin or with
``manage.py regrade --publish``; publishing checks again that its results are still the newest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from courses.languages import recipient_language
from courses.models import Challenge
from grader import __version__ as grader_version
from submissions import doorbell, lifecycle
from submissions.copies import Prints, copies_record
from submissions.lifecycle import FINISHED
from submissions.models import GradingRun, RegradeBatch, Submission
from submissions.services import doorbell_time_limits
from submissions.standings import standings_refresh

logger = logging.getLogger(__name__)


class RegradeRefused(Exception):
    """A re-grade that may not start (or be published) now; the message says why."""


@dataclass(frozen=True)
class Change:
    submission_id: Any
    handle: str
    username: str
    old_score: float | None
    new_score: float | None
    old_passed: bool | None
    new_passed: bool | None


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    failed: int

    def __str__(self) -> str:
        return _("%(done)s of %(total)s graded, %(failed)s failure(s)") % {
            "done": self.done,
            "total": self.total,
            "failed": self.failed,
        }

    @classmethod
    def of(cls, batch: RegradeBatch) -> Progress:
        """From a batch annotated by ``RegradeBatch.objects.with_progress()``, else one query."""
        if not hasattr(batch, "done"):
            batch = RegradeBatch.objects.with_progress().get(pk=batch.pk)
        return cls(done=batch.done, total=batch.total, failed=batch.failed)  # type: ignore[attr-defined]


def _log(user: Any, batch: RegradeBatch, flag: int, message: str) -> None:
    """The admin log's record of who did what to a batch, and why."""
    if user is None:
        return
    LogEntry.objects.create(
        user=user,
        content_type=ContentType.objects.get_for_model(RegradeBatch),
        object_id=str(batch.pk),
        object_repr=str(batch)[:200],
        action_flag=flag,
        change_message=message,
    )


# --- starting ---------------------------------------------------------------------------------


def regrade_batch_start(
    challenge: Challenge,
    user: Any,
    reason: str,
    *,
    submissions: Iterable[Submission] | None = None,
    dry_run: bool = False,
) -> RegradeBatch:
    """One queued attempt per finished submission of ``challenge`` (default: all of them),
    sent after commit; recorded in the admin log when ``user`` is given."""
    if challenge.semester.closed:
        raise RegradeRefused(
            f"The {challenge.semester} semester is closed: reopen it before re-grading."
        )
    if not reason.strip():
        raise RegradeRefused("Say why: a re-grade needs a reason.")
    chosen = Submission.objects.filter(challenge=challenge, status__in=FINISHED)
    if submissions is not None:
        chosen = chosen.filter(pk__in=[s.pk for s in submissions])
    now = timezone.now()
    with transaction.atomic():
        rows = list(chosen.values_list("pk", "score", "passed"))
        if not rows:
            raise RegradeRefused(f"{challenge.slug}: no graded or failed submission to re-grade.")
        batch = RegradeBatch.objects.create(
            challenge=challenge,
            created_by=user,
            reason=reason.strip(),
            dry_run=dry_run,
            total=len(rows),
            created_at=now,
            threshold=challenge.threshold,
            score_key=challenge.score_key,
        )
        GradingRun.objects.bulk_create(
            GradingRun(
                submission_id=pk,
                batch=batch,
                attempt=0,
                outcome=GradingRun.Outcome.QUEUED,
                grader_version=grader_version,
                started_at=now,
                previous_score=score,
                previous_passed=passed,
            )
            for pk, score, passed in rows
        )
        _log(
            user,
            batch,
            ADDITION,
            f"{'Dry run' if dry_run else 'Re-grade'} of {len(rows)}"
            f" submission(s) of {challenge.slug}: {batch.reason}",
        )
        soft, hard = doorbell_time_limits(challenge)
        for run_id in GradingRun.objects.filter(batch=batch).values_list("pk", flat=True):
            doorbell.ring_after_commit(
                doorbell.REGRADE_ATTEMPT,
                run_id,
                soft=soft,
                hard=hard,
                device=challenge.device,
                on_failure=partial(lifecycle.run_mark_unsent, run_id),
            )
    logger.info("re-grade %s started by %s: %s", batch.pk, user, batch.reason)
    return batch


# --- publishing and reporting -----------------------------------------------------------------


def regrade_batch_check(batch: RegradeBatch) -> None:
    """Raise ``RegradeRefused`` if publishing ``batch`` now would publish the wrong numbers."""
    challenge = batch.challenge
    if challenge.semester.closed:
        raise RegradeRefused(
            f"the {challenge.semester} semester is closed: reopen it, then publish the re-grade."
        )
    if batch.threshold is not None and batch.threshold != challenge.threshold:
        raise RegradeRefused(
            f"the pass threshold changed since the re-grade started ({batch.threshold:g} →"
            f" {challenge.threshold:g}): start a new re-grade."
        )
    if batch.score_key and batch.score_key != challenge.score_key:
        raise RegradeRefused(
            f"the ranked figure changed since the re-grade started ({batch.score_key} →"
            f" {challenge.score_key}): start a new re-grade."
        )
    newer = (
        RegradeBatch.objects.filter(
            challenge=challenge,
            status=RegradeBatch.Status.PUBLISHED,
            created_at__gt=batch.created_at,
        )
        .values_list("pk", flat=True)
        .first()
    )
    if newer is not None:
        raise RegradeRefused(
            f"re-grade #{newer}, started later, is already published: publishing this one would"
            " bring back older results."
        )
    hashes = set(
        batch.runs.filter(outcome=GradingRun.Outcome.GRADED)
        .exclude(dataset_hash="")
        .values_list("dataset_hash", flat=True)
        .distinct()
    )
    if len(hashes) > 1:
        raise RegradeRefused(
            "the hidden test data changed while the re-grade ran (its attempts saw"
            f" {len(hashes)} versions): start a new re-grade."
        )
    if hashes:
        # Uploads graded since then on other data: the test set was replaced after this batch.
        (used,) = hashes
        if (
            GradingRun.objects.filter(
                submission__challenge=challenge,
                batch__isnull=True,
                outcome=GradingRun.Outcome.GRADED,
                finished_at__gt=batch.created_at,
            )
            .exclude(dataset_hash__in=["", used])
            .exists()
        ):
            raise RegradeRefused(
                "the hidden test data was replaced after this re-grade ran: start a new re-grade."
            )


def regrade_batch_publish(batch: RegradeBatch, user: Any = None) -> int:
    """Give every submission of a complete batch its new result, in one transaction.

    A dry run is published the same way when staff decide to (``user`` is recorded). Attempts
    that gave no result (platform error, lost worker) leave their submission as it was. Returns
    the number of submissions updated.
    """
    now = timezone.now()
    updated = 0
    with transaction.atomic():
        # Locked: two publishes (or a publish and a cancel) of one batch never interleave.
        locked = (
            RegradeBatch.objects.select_for_update(of=("self",))
            .select_related("challenge__semester")
            .filter(pk=batch.pk, status=RegradeBatch.Status.COMPLETE)
            .first()
        )
        if locked is None:
            raise RegradeRefused(f"re-grade #{batch.pk} is not complete, or already published.")
        regrade_batch_check(locked)
        runs = list(
            batch.runs.filter(
                outcome__in=[GradingRun.Outcome.GRADED, GradingRun.Outcome.REJECTED]
            ).select_related("submission")
        )
        for run in runs:
            graded = run.outcome == GradingRun.Outcome.GRADED
            # finished_at moves on; the standings refreshed below move the board's cache key.
            updated += lifecycle.publish(
                run.submission_id,
                {
                    "status": Submission.Status.GRADED if graded else Submission.Status.FAILED,
                    "score": run.score if graded else None,
                    "passed": run.passed if graded else None,
                    "metrics": run.metrics,
                    "error": "" if graded else run.error,
                    "finished_at": now,
                },
            )
        standings_refresh((run.submission.enrollment_id, batch.challenge_id) for run in runs)
        RegradeBatch.objects.filter(pk=batch.pk).update(
            status=RegradeBatch.Status.PUBLISHED, published_at=now, published_by=user, note=""
        )
        _log(user, batch, CHANGE, f"Published: {updated} submission(s) took the new results.")
    # Each published result's copies, after the results are visible to other gradings.
    for run in runs:
        graded = run.outcome == GradingRun.Outcome.GRADED
        copies_record(run.submission, Prints.of_run(run) if graded else None)
    batch.status = RegradeBatch.Status.PUBLISHED
    batch.published_at, batch.published_by, batch.note = now, user, ""
    logger.info("re-grade %s published: %d submission(s) updated", batch.pk, updated)
    return updated


def regrade_batch_cancel(batch: RegradeBatch, user: Any = None, reason: str = "") -> int:
    """Stop a running batch, or drop a complete one unpublished; nothing is published.

    Attempts not yet taken by a worker are cancelled; those already running finish and are
    recorded for the report, but the batch no longer completes. Returns the attempts cancelled.
    """
    note = f"Cancelled{f' by {user}' if user else ''}" + (f": {reason}" if reason else ".")
    with transaction.atomic():
        if (
            not RegradeBatch.objects.select_for_update()
            .filter(
                pk=batch.pk, status__in=[RegradeBatch.Status.RUNNING, RegradeBatch.Status.COMPLETE]
            )
            .update(status=RegradeBatch.Status.CANCELLED, finished_at=timezone.now(), note=note)
        ):
            raise RegradeRefused(f"re-grade #{batch.pk} is already published or cancelled.")
        cancelled = lifecycle.runs_cancel(batch.pk, timezone.now())
        _log(user, batch, CHANGE, note)
    batch.status, batch.note = RegradeBatch.Status.CANCELLED, note
    logger.info("re-grade %s cancelled: %d attempt(s) not run", batch.pk, cancelled)
    return cancelled


def regrade_batch_notify(batch_id: int) -> None:
    """Email whoever started a batch that it finished: published, or waiting for them and why.

    A re-grade of a whole challenge can take an hour; nobody should have to watch the page.
    """
    batch = (
        RegradeBatch.objects.select_related("challenge", "created_by").filter(pk=batch_id).first()
    )
    if batch is None or batch.created_by is None or not batch.created_by.email:
        return
    report = settings.SITE_URL + reverse("regrade_report", args=[batch.pk])
    page = settings.SITE_URL + reverse("admin:courses_challenge_change", args=[batch.challenge_id])
    # In the language of whoever started it: a worker has no request.
    with translation.override(recipient_language(batch.created_by)):
        if batch.status == RegradeBatch.Status.PUBLISHED:
            outcome = _("It is published: the leaderboard shows the new results.")
        elif batch.dry_run:
            outcome = _(
                "It was a dry run: nothing is published. Publish it from the challenge's admin"
                " page if its results are right."
            )
        else:
            outcome = _("It is NOT published. %(note)s") % {"note": batch.note}
        subject = _("[%(challenge)s] Re-grade #%(pk)s: %(status)s") % {
            "challenge": batch.challenge.title,
            "pk": batch.pk,
            "status": batch.get_status_display(),
        }
        message = _(
            "Re-grade #%(pk)s of %(challenge)s (%(reason)s) finished: %(progress)s,"
            " %(changed)s submission(s) changed.\n\n%(outcome)s\n\nWhat changed: %(report)s\n"
            "The challenge's re-grades: %(page)s\n"
        ) % {
            "pk": batch.pk,
            "challenge": batch.challenge.slug,
            "reason": batch.reason,
            "progress": Progress.of(batch),
            "changed": len(regrade_batch_report(batch)),
            "outcome": outcome,
            "report": report,
            "page": page,
        }
    send_mail(
        subject=subject,
        message=message,
        from_email=None,
        recipient_list=[batch.created_by.email],
    )


def regrade_batch_report(batch: RegradeBatch) -> list[Change]:
    """Every submission whose score or pass flag the batch changed (or would change)."""
    runs = (
        batch.runs.filter(outcome__in=[GradingRun.Outcome.GRADED, GradingRun.Outcome.REJECTED])
        .select_related("submission__enrollment__user")
        .order_by("submission__enrollment__handle", "submission__created_at")
    )
    return [
        Change(
            submission_id=run.submission_id,
            handle=run.submission.enrollment.handle,
            username=run.submission.enrollment.user.get_username(),
            old_score=run.previous_score,
            new_score=run.score,
            old_passed=run.previous_passed,
            new_passed=run.passed,
        )
        for run in runs
        if run.score != run.previous_score or run.passed != run.previous_passed
    ]


def regrade_batch_complete(batch_id: int) -> None:
    """Called as each attempt ends, in its transaction: the last one completes the batch and,
    unless it is a dry run or must be held back, publishes it."""
    # Serialise the attempts of a batch as they finish, so exactly one sees itself last.
    RegradeBatch.objects.select_for_update().filter(pk=batch_id).exists()
    if GradingRun.objects.filter(batch_id=batch_id, outcome__in=GradingRun.PENDING).exists():
        return
    completed = RegradeBatch.objects.filter(pk=batch_id, status=RegradeBatch.Status.RUNNING).update(
        status=RegradeBatch.Status.COMPLETE, finished_at=timezone.now()
    )
    if not completed:  # cancelled while this attempt ran
        return
    # Whoever started it hears how it ended, once the outcome below is committed.
    doorbell.after_commit(
        regrade_batch_notify, batch_id, what=f"emailing the end of re-grade {batch_id}"
    )
    batch = RegradeBatch.objects.select_related("challenge__semester").get(pk=batch_id)
    if batch.dry_run:
        return
    try:
        regrade_batch_publish(batch)
    except RegradeRefused as exc:
        # Held, not lost: staff see why on the batch and publish once it is fixed.
        RegradeBatch.objects.filter(pk=batch.pk).update(note=f"Held back: {exc}")
        logger.warning("re-grade %s complete but held back: %s", batch.pk, exc)
