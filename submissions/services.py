"""Uploading: who may upload when (deadline, closed semester, quota), storing the file and queueing
it. Used by the upload form's view, the API and the sweep. Recording results is
``submissions.results``; every status change is ``submissions.lifecycle``."""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from courses.formatting import format_local
from courses.models import Challenge, Enrollment
from submissions import doorbell, lifecycle
from submissions.models import Submission, submission_path
from submissions.policies import days_late, window_for
from submissions.storage import StorageUnavailable, store_errors

logger = logging.getLogger(__name__)

QUOTA_WINDOW = timedelta(hours=24)


class SubmissionRefused(Exception):
    """An upload the challenge does not take now; ``code`` picks the API's status."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- uploading --------------------------------------------------------------------------------


def quota_used(enrollment: Enrollment, challenge: Challenge, now: datetime) -> int:
    """Uploads in the rolling 24 hours before ``now`` that count against the daily quota.

    A rolling window rather than the course's calendar day: nobody gains by waiting for
    midnight, and it reads the same in every timezone.
    """
    return Submission.objects.filter(
        enrollment=enrollment,
        challenge=challenge,
        counts_for_quota=True,
        created_at__gt=now - QUOTA_WINDOW,
    ).count()


def quota_next_slot(enrollment: Enrollment, challenge: Challenge, now: datetime) -> datetime:
    """When the oldest counting upload of the window drops out of it."""
    oldest = (
        Submission.objects.filter(
            enrollment=enrollment,
            challenge=challenge,
            counts_for_quota=True,
            created_at__gt=now - QUOTA_WINDOW,
        )
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return (oldest or now) + QUOTA_WINDOW


def submission_check_window(enrollment: Enrollment, challenge: Challenge, now: datetime) -> None:
    """Raise ``SubmissionRefused`` unless ``enrollment`` may upload to ``challenge`` at ``now``:
    before their own deadline (an extension's, if any), or after it while late days last, and
    within their daily quota (plus an extension's extra uploads)."""
    if enrollment.semester_id != challenge.semester_id:
        raise SubmissionRefused("not_enrolled", _("You are not enrolled in this semester."))
    if challenge.semester.closed:
        raise SubmissionRefused(
            "closed",
            _("The %(semester)s semester is closed: uploads are over.")
            % {"semester": challenge.semester.title},
        )
    tz = challenge.semester.course.tzinfo
    window = window_for(enrollment, challenge, now)
    late = days_late(window.deadline, now)
    if late > window.late_limit:
        deadline = format_local(window.deadline, tz)
        if window.late_limit:
            message = ngettext(
                "The deadline (%(deadline)s) and the %(days)s late day you may spend here"
                " have passed.",
                "The deadline (%(deadline)s) and the %(days)s late days you may spend here"
                " have passed.",
                window.late_limit,
            ) % {"deadline": deadline, "days": window.late_limit}
        else:
            message = _("The deadline (%(deadline)s) has passed.") % {"deadline": deadline}
        raise SubmissionRefused("deadline", message)
    if quota_used(enrollment, challenge, now) >= window.quota:
        next_slot = format_local(quota_next_slot(enrollment, challenge, now), tz)
        raise SubmissionRefused(
            "quota",
            ngettext(
                "You have used your %(quota)s upload of the last 24 hours for this challenge;"
                " the next one is possible from %(next)s.",
                "You have used all %(quota)s uploads of the last 24 hours for this challenge;"
                " the next one is possible from %(next)s.",
                window.quota,
            )
            % {"quota": window.quota, "next": next_slot},
        )


def _digest(upload: File) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in upload.chunks():
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


STORAGE_MESSAGE = gettext_noop(
    "Your upload could not be stored because of a problem on our side (the server's storage is"
    " full or unavailable). Nothing was charged to your quota: please try again later."
)


def _store(submission: Submission, upload: File) -> None:
    """Write the upload to storage; a full disk (ENOSPC) or any other storage failure deletes
    what was partly written and refuses the upload as the platform's fault, not the student's."""
    try:
        submission.file.save("upload.bin", upload, save=False)
    except store_errors() as exc:
        # The object store is down: nothing was written, the transaction rolls back, and the
        # student hears it is the platform's problem (503), with no row left without its file.
        logger.error("submission upload: the object store failed: %s", exc)
        raise StorageUnavailable(str(exc)) from exc
    except OSError as exc:
        logger.error("storing an upload for %s failed: %s", submission.challenge.slug, exc)
        name = submission_path(submission, "")
        try:
            submission.file.storage.delete(name)
        except OSError:
            logger.exception("deleting the partial upload %s failed", name)
        raise SubmissionRefused("storage", _(STORAGE_MESSAGE)) from exc


def submission_create(
    *,
    enrollment: Enrollment,
    challenge: Challenge,
    upload: File,
    fmt: str,
    now: datetime | None = None,
) -> Submission:
    """Store an upload that passed the form's checks, create it queued, queue it after commit.

    Raises ``StorageUnavailable`` when the object store is down; nothing is then recorded.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # Serialise uploads of one student so two at once cannot both take the last quota slot
        # (SQLite's IMMEDIATE transactions serialise all writers anyway).
        Enrollment.objects.select_for_update().filter(pk=enrollment.pk).exists()
        submission_check_window(enrollment, challenge, now)
        sha256, size = _digest(upload)
        submission = Submission(
            id=uuid.uuid4(),
            enrollment=enrollment,
            challenge=challenge,
            original_name=(upload.name or "")[-255:],
            sha256=sha256,
            size=size,
            format=fmt,
            created_at=now,
            queued_at=now,
        )
        _store(submission, upload)
        try:
            submission.save(force_insert=True)
            submission_enqueue(submission)
        except BaseException:
            # The row is rolled back: the stored file would be an orphan nothing points at.
            submission.file.delete(save=False)
            raise
    logger.info(
        "submission %s: %s uploaded %s (%d bytes) to %s",
        submission.pk,
        enrollment.handle,
        fmt,
        size,
        challenge.slug,
    )
    return submission


# --- queueing ---------------------------------------------------------------------------------


def grading_time_limits(challenge: Challenge) -> tuple[int, int]:
    """Celery's soft and hard limits: the model's own wall clock plus the job's overhead."""
    soft = challenge.time_limit_seconds + settings.GRADER_TASK_OVERHEAD_SECONDS
    return soft, soft + 30


def doorbell_time_limits(challenge: Challenge) -> tuple[int, int]:
    """The Celery limits of a grading message for ``challenge``: those of the longest time
    limit on its device, since the worker it wakes claims the fairest waiting work of the
    device, which may be another challenge's (``submissions.claim``)."""
    longest = Challenge.objects.filter(device=challenge.device).aggregate(
        longest=Max("time_limit_seconds")
    )["longest"]
    soft = max(longest or 0, challenge.time_limit_seconds) + settings.GRADER_TASK_OVERHEAD_SECONDS
    return soft, soft + 30


def submission_enqueue(submission: Submission, *, countdown: float | None = None) -> None:
    """Ring the doorbell once the row is committed, so a worker always finds it (after
    ``countdown`` seconds: a platform error's backoff).

    A broker that is down is only logged: the row stays queued and the sweep sends it again.
    """
    soft, hard = doorbell_time_limits(submission.challenge)
    pk = submission.pk
    doorbell.ring_after_commit(
        doorbell.GRADE_SUBMISSION,
        str(pk),
        soft=soft,
        hard=hard,
        device=submission.challenge.device,
        countdown=countdown,
        on_failure=lambda: lifecycle.mark_unsent(pk),
    )
