"""Who sees which submission: the owner, the semester's TAs and staff holding the grade-book
permission; 404 for the rest."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from courses.access import User, is_course_staff, sees_every_gradebook
from courses.models import Enrollment
from submissions.models import Submission


def visible_submissions(user: User) -> QuerySet[Submission]:
    if sees_every_gradebook(user):
        return Submission.objects.all()
    if isinstance(user, AnonymousUser):
        return Submission.objects.none()
    ta_semesters = Enrollment.objects.filter(user_id=user.pk, role=Enrollment.Role.TA).values(
        "semester_id"
    )
    return Submission.objects.filter(
        Q(enrollment__user_id=user.pk) | Q(challenge__semester_id__in=ta_semesters)
    )


def submission_for_viewer(user: User, pk: UUID | str) -> Submission:
    return get_object_or_404(
        visible_submissions(user).select_related("challenge__semester__course", "enrollment__user"),
        pk=pk,
    )


def can_see_runs(user: User, submission: Submission) -> bool:
    """Grading runs hold logs that may echo hidden test inputs: course staff only."""
    return is_course_staff(user, submission.challenge.semester)


#: facts of the grading host in a result's metrics; the result page shows them only beside the
#: runs (to course staff), and the API follows the page
STAFF_ONLY_METRICS = ("dataset_hash", "runner", "grader_version")


def metrics_for(
    user: User, submission: Submission, metrics: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The submission's metrics (or the part of them ``metrics`` the policies show) as ``user``
    may see them: without the host's facts for students."""
    metrics = dict(submission.metrics or {} if metrics is None else metrics)
    if not can_see_runs(user, submission):
        for key in STAFF_ONLY_METRICS:
            metrics.pop(key, None)
    return metrics
