"""A grading from the submissions' side: open it (claim and a run), record how it went, tell the
student. The worker calls ``grading_open``, evaluates, then ``grading_record`` once.

Nothing here runs the grader or imports torch: the worker hands in a ``GradingOutcome``, built
from what the grader returned (an evaluation, or the error that stopped it) and the pictures the
kind drew. ``GradingError`` is the model's fault and final; ``PlatformError`` is the host's and
goes back to the queue for a retry, or, on the last try, fails without counting.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.mail import send_mail
from django.db import InterfaceError, OperationalError, close_old_connections, transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from courses.formatting import format_figure, format_score
from courses.languages import recipient_language
from grader import __version__ as grader_version
from grader.errors import GraderError, GradingError, PlatformError
from submissions import doorbell, lifecycle
from submissions.copies import Prints, copies_record
from submissions.heartbeats import run_holder_dead
from submissions.models import GradingRun, Submission
from submissions.policies import shown_result
from submissions.wording import student_message

if TYPE_CHECKING:
    from grader.evaluate import Evaluation

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Worker:
    """Who grades: recorded on every run."""

    host: str
    device: str
    torch_version: str
    #: the process (``WorkerHeartbeat.name``) that holds the claims it makes
    name: str = ""


@dataclass
class GradingOutcome:
    """How one evaluation went, as the worker saw it."""

    #: the runner that ran the model, and the test set's hash, as far as they became known
    runner: str = ""
    dataset_hash: str = ""
    evaluation: Evaluation | None = None
    #: what stopped it instead: the model's fault (GradingError) or the host's (PlatformError)
    error: GraderError | None = None
    #: pictures the kind drew on public samples: name -> PNG bytes
    pictures: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Grading:
    """A claimed submission and the run that records this attempt."""

    submission: Submission
    run: GradingRun


def keep_log(text: str) -> str:
    """The end of a staff-only log, within ``GRADER_LOG_KEEP_CHARS``."""
    keep = settings.GRADER_LOG_KEEP_CHARS
    return text if len(text) <= keep else "[... truncated ...]\n" + text[-keep:]


def evaluation_outcome(evaluation: Evaluation) -> tuple[float | None, bool, dict[str, Any]]:
    """Score, pass flag and stored metrics of an evaluation, which ran with the challenge's
    ranked figure and threshold: NaN is no score, and JSON gets its infinity as a string."""
    score = evaluation.score if not math.isnan(evaluation.score) else None
    passed = score is not None and evaluation.passed
    metrics = evaluation.to_json()
    metrics["passed"] = passed
    return score, passed, metrics


def copy_prints(evaluation: Evaluation) -> Prints:
    """What an evaluation found for finding copies (staff only, never in its metrics)."""
    return Prints(
        evaluation.weights_fingerprint,
        evaluation.predictions_fingerprint,
        evaluation.predictions_sketch,
    )


# --- the worker's side ------------------------------------------------------------------------

T = TypeVar("T")


def with_db_retry(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn``, and again after a lost database connection (a restart, a failover):
    reconnect and retry ``GRADER_RECORD_RETRIES`` times with a doubling backoff, so a finished
    grading is not thrown away because the database blinked. Every step it retries is one
    transaction of conditional updates, so a retry never does anything twice."""
    delay = float(settings.GRADER_RECORD_BACKOFF_SECONDS)
    retries = int(settings.GRADER_RECORD_RETRIES)
    for attempt in range(retries + 1):
        try:
            return fn(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            if attempt >= retries:
                raise
            logger.warning(
                "%s: database unavailable (%s); retry %d of %d in %.1f s",
                what,
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                attempt + 1,
                retries,
                delay,
            )
            time.sleep(delay)
            delay *= 2
            # Drops the broken connection (Django marked it): the next query opens a new one.
            close_old_connections()
    raise AssertionError("unreachable")


def grading_open(submission_id: Any, worker: Worker) -> Grading | None:
    """Claim a queued submission (or take over a dead holder's claim) and open its run; None
    if there is nothing to claim."""
    return _open(submission_id, worker, takeover_only=False)


def grading_takeover(submission_id: Any, worker: Worker) -> Grading | None:
    """Take over the claim of a running submission whose holder is dead (a re-delivered
    message) and open its run; None unless it is running with a dead holder."""
    return _open(submission_id, worker, takeover_only=True)


def _open(submission_id: Any, worker: Worker, *, takeover_only: bool) -> Grading | None:
    with transaction.atomic():
        # One transaction: a claim always names its holder, so its death is always seen.
        claimed = None if takeover_only else lifecycle.claim(submission_id)
        submission = claimed or _takeover(submission_id)
        if submission is None:
            return None
        run = GradingRun.objects.create(
            submission=submission,
            attempt=submission.attempts,
            worker_host=worker.host[:200],
            worker_name=worker.name[:200],
            device=worker.device,
            torch_version=worker.torch_version[:64],
            grader_version=grader_version,
        )
    logger.info(
        "submission %s: grading attempt %d on %s (%s)",
        submission.pk,
        submission.attempts,
        worker.host,
        worker.device,
    )
    return Grading(submission, run)


def _takeover(submission_id: Any) -> Submission | None:
    """A re-delivered message (its worker was killed before acknowledging it) finds the row
    running: it takes the claim over if the process holding it is dead, recording that
    process's attempt as lost; otherwise it is a duplicate and finds nothing."""
    try:
        held = (
            GradingRun.objects.filter(
                submission_id=submission_id,
                submission__status=Submission.Status.RUNNING,
                outcome=GradingRun.Outcome.RUNNING,
                batch__isnull=True,
            )
            .select_related("submission")
            .order_by("-attempt")
            .first()
        )
    except ValidationError:  # not a UUID
        return None
    if held is None or held.attempt != held.submission.attempts or not run_holder_dead(held):
        return None
    submission = lifecycle.takeover(submission_id, held.attempt)
    if submission is None:
        return None
    lifecycle.run_close(
        held,
        GradingRun.Outcome.LOST,
        error_code="lost",
        log="the worker died: its heartbeat stopped; a re-delivered message took over",
    )
    logger.warning("submission %s: taken over from dead worker %s", submission_id, held.worker_name)
    return submission


@dataclass(frozen=True)
class RunEnd:
    """How an attempt ends on its run: the outcome and the figures that go with it."""

    outcome: GradingRun.Outcome
    fields: dict[str, Any]

    @classmethod
    def graded(cls, evaluation: Evaluation) -> RunEnd:
        """A finished evaluation's end: its score, pass flag, stored metrics and log."""
        score, passed, metrics = evaluation_outcome(evaluation)
        fields: dict[str, Any] = {"score": score, "passed": passed, "metrics": metrics}
        fields |= {"grader_version": evaluation.grader_version, "log": evaluation.log}
        fields |= copy_prints(evaluation).fields()
        return cls(GradingRun.Outcome.GRADED, fields)

    def summary(self) -> str:
        """A line for the staff log: "graded, score 123.4 (passed)",
        "rejected (the model's fault): output_shape"."""
        label = self.outcome.label.lower()
        if self.outcome != GradingRun.Outcome.GRADED:
            return f"{label}: {self.fields.get('error_code') or 'no code'}"
        score, passed = self.fields.get("score"), self.fields.get("passed")
        shown = "no score" if score is None else f"score {score:g}"
        return f"{label}, {shown} ({'passed' if passed else 'not passed'})"


def grading_record(grading: Grading, outcome: GradingOutcome, *, last_try: bool) -> bool:
    """Record the outcome on the submission and its run if this attempt still holds the claim;
    store the pictures; email the student once it is final. Returns whether the submission
    took the outcome (in this call, or in an earlier try of it: ``with_db_retry``).

    A worker that finishes after its attempt was closed without it (the sweep recorded it lost
    and re-queued the submission, or a re-delivered message took it over) changes nothing: the
    run keeps what was recorded, and what this worker found goes to the run's staff log only.
    """
    submission, run = grading.submission, grading.run
    known = {"runner": outcome.runner[:32], "dataset_hash": outcome.dataset_hash}
    error = outcome.error
    with transaction.atomic():
        # The submission first, then its run: the order every transition of a claim keeps, so
        # a sweep racing this write waits for it (or it for the sweep) instead of deadlocking.
        if isinstance(error, GradingError):
            done, end = _record_rejection(submission, error)
        elif outcome.evaluation is not None and error is None:
            done, end = _record_result(submission, outcome.evaluation)
        else:
            if not isinstance(error, PlatformError):
                error = PlatformError("internal", "no result and no error from grading")
            done, end = _record_platform_error(submission, run, error, give_up=last_try)
        fields = {**known, **end.fields, "log": keep_log(end.fields.get("log", ""))}
        if done and not lifecycle.run_close(run, end.outcome, **fields):
            # The claim and its run move together: only a hand-edited row gets here.
            logger.error(
                "submission %s: attempt %d held the claim but its run was closed",
                submission.pk,
                submission.attempts,
            )
        # Not held: a late worker's outcome is only noted, unless it is this very outcome,
        # committed by an earlier try of this write whose answer the connection lost.
        already = not done and not run_note_late(run, end)
        if done and submission.status in lifecycle.FINISHED:
            doorbell.after_commit(
                submission_notify, submission, what=f"emailing the result of {submission.pk}"
            )
    if done and outcome.pictures and submission.status == Submission.Status.GRADED:
        submission_pictures_store(submission, outcome.pictures)
    if done and outcome.evaluation is not None and submission.status == Submission.Status.GRADED:
        copies_record(submission, copy_prints(outcome.evaluation))
    if not done and not already:
        logger.warning(
            "submission %s: attempt %d no longer holds the claim; its outcome is only noted in"
            " the run's log",
            submission.pk,
            submission.attempts,
        )
    return done or already


def run_note_late(run: GradingRun, end: RunEnd, *, written: str = "") -> bool:
    """Keep, in the run's staff log only, the outcome of an attempt that was closed without it
    (recorded lost, re-queued, taken over): it changes no state and counts for nothing.

    Returns False, noting nothing, when the run already holds this very outcome (``written``
    if the write was another than ``end.outcome``) for this attempt: an earlier try of the
    same write committed it, and only its answer was lost with the connection.
    """
    with transaction.atomic():
        # Locked: the log is read, extended and written back, and a sweep may write it too.
        now = (
            GradingRun.objects.select_for_update()
            .filter(pk=run.pk)
            .values("outcome", "attempt", "error_code", "log")
            .first()
        )
        if now is None:
            return True
        if (now["attempt"], now["outcome"], now["error_code"]) == (
            run.attempt,
            written or end.outcome,
            end.fields.get("error_code", ""),
        ):
            return False
        state = GradingRun.Outcome(now["outcome"]).label.lower()
        if now["attempt"] == run.attempt:
            when = f"after this attempt was recorded {state}"
        else:
            when = (
                f"after attempt {run.attempt} was re-queued (now attempt {now['attempt']}: {state})"
            )
        note = f"a late result arrived {when}: {end.summary()} — not counted"
        log = keep_log("\n".join(filter(None, [now["log"], note])))
        GradingRun.objects.filter(pk=run.pk).update(log=log)
    logger.warning("run %s: %s", run.pk, note)
    return True


def _record_result(submission: Submission, evaluation: Evaluation) -> tuple[bool, RunEnd]:
    end = RunEnd.graded(evaluation)
    score, passed, metrics = (end.fields[key] for key in ("score", "passed", "metrics"))
    logger.info(
        "submission %s graded: %s=%s passed=%s (%.1f s)",
        submission.pk,
        submission.challenge.score_key,
        score,
        passed,
        evaluation.seconds,
    )
    return lifecycle.finish(submission, score=score, passed=passed, metrics=metrics), end


def _record_rejection(submission: Submission, error: GradingError) -> tuple[bool, RunEnd]:
    end = RunEnd(
        GradingRun.Outcome.REJECTED,
        {"error_code": error.code[:64], "error": error.message, "log": error.detail},
    )
    logger.info("submission %s rejected: %s", submission.pk, error.code)
    return lifecycle.finish(submission, error=error.message), end


def _record_platform_error(
    submission: Submission, run: GradingRun, error: PlatformError, *, give_up: bool
) -> tuple[bool, RunEnd]:
    end = RunEnd(
        GradingRun.Outcome.PLATFORM_ERROR,
        {
            "error_code": error.code[:64],
            "log": "\n".join(filter(None, [error.message, error.detail, run.log])),
        },
    )
    log = logger.error if give_up else logger.warning
    log(
        "submission %s: platform error %s (%s)%s",
        submission.pk,
        error.code,
        error.message,
        "; given up" if give_up else "; will retry",
    )
    return (lifecycle.give_up(submission) if give_up else lifecycle.requeue(submission)), end


def picture_name(submission: Submission, name: str) -> str:
    return f"figures/{submission.pk}/{name}.png"


def submission_pictures_store(submission: Submission, pictures: dict[str, bytes]) -> None:
    """Store the kind's pictures and note them on the row. Best effort: the grade stands."""
    try:
        stored = dict(submission.pictures or {})
        for name, png in pictures.items():
            path = picture_name(submission, name)
            # A re-grade draws again: replace the old picture rather than get a renamed copy.
            default_storage.delete(path)
            stored[name] = default_storage.save(path, ContentFile(png))
        Submission.objects.filter(pk=submission.pk).update(pictures=stored)
        submission.pictures = stored
    except Exception:
        logger.warning("submission %s: storing its pictures failed", submission.pk, exc_info=True)


# --- telling the student ----------------------------------------------------------------------


def submission_summary(submission: Submission) -> str:
    """One line for emails and pages: "passed: score 123.45 (MSE 0.004051)", in the active
    language."""
    challenge = submission.challenge
    if submission.status == Submission.Status.FAILED:
        return _("failed: %(error)s") % {"error": student_message(submission.error)}
    if submission.status != Submission.Status.GRADED:
        return str(submission.get_status_display()).lower()
    # Before the reveal of a split challenge, the public part only.
    shown = shown_result(submission)
    kind = challenge.kind
    values = {
        "key": challenge.score_key,
        "score": format_score(shown.score, kind.score_display),
    }
    text = (
        _("passed: %(key)s %(score)s") if shown.passed else _("not passed: %(key)s %(score)s")
    ) % values
    extras = [
        f"{_(figure.label)} {format_figure(shown.metrics.get(figure.key), figure.style)}"
        for figure in kind.figures
        if figure.headline and figure.key != challenge.score_key
    ]
    return text + (f" ({', '.join(extras)})" if extras else "")


def submission_notify(submission: Submission) -> None:
    """Email the student their result, in their language (a worker has no request)."""
    user = submission.enrollment.user
    if not user.email:
        return
    url = settings.SITE_URL + reverse("submission_detail", args=[submission.pk])
    with translation.override(recipient_language(user)):
        summary = submission_summary(submission)
        subject = f"[{submission.challenge.title}] {summary}"[:150]
        message = _(
            "Your upload to %(challenge)s (%(semester)s) finished grading.\n\n%(summary)s\n\n"
            "Details: %(url)s\n"
        ) % {
            "challenge": submission.challenge.title,
            "semester": submission.challenge.semester,
            "summary": summary,
            "url": url,
        }
    send_mail(
        subject=subject,
        message=message,
        from_email=None,
        recipient_list=[user.email],
    )
