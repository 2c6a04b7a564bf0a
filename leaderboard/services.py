"""The ranking, shared by the leaderboard page and the JSON API.

Each enrolled student is ranked by their best graded submission: higher score first (an infinite
score first of all), ties broken by the earlier upload. Teaching assistants are not ranked.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Window
from django.db.models.functions import RowNumber

from leaderboard.models import Challenge, Enrollment

# The leaderboard reads submissions; submissions never import this module, so no cycle.
from submissions.models import Submission


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    handle: str
    score: float
    #: keypoints only
    mse: float | None
    passed: bool
    #: uploads to this challenge, not counting those that failed for a platform reason
    submissions: int
    submitted_at: datetime
    submission_id: uuid.UUID


def leaderboard_rows(challenge: Challenge) -> list[LeaderboardRow]:
    """The ranked rows of ``challenge``: two queries, whatever the number of students."""
    ranked = Submission.objects.filter(
        challenge=challenge,
        status=Submission.Status.GRADED,
        score__isnull=False,
        enrollment__role=Enrollment.Role.STUDENT,
    )
    best = (
        ranked.annotate(
            position=Window(
                RowNumber(),
                partition_by=[F("enrollment_id")],
                order_by=[F("score").desc(), F("created_at").asc(), F("id").asc()],
            )
        )
        .filter(position=1)
        .select_related("enrollment")
        .order_by(F("score").desc(), "created_at", "id")
    )
    counts = dict(
        Submission.objects.filter(challenge=challenge, counts_for_quota=True)
        .values("enrollment_id")
        .annotate(n=Count("id"))
        .values_list("enrollment_id", "n")
    )
    return [
        LeaderboardRow(
            rank=rank,
            handle=submission.enrollment.handle,
            # Never None: the query keeps graded submissions with a score only.
            score=float(submission.score if submission.score is not None else math.nan),
            mse=submission.mse,
            passed=bool(submission.passed),
            submissions=counts.get(submission.enrollment_id, 1),
            submitted_at=submission.created_at,
            submission_id=submission.id,
        )
        for rank, submission in enumerate(best, start=1)
    ]


def challenge_other_semesters(challenge: Challenge) -> list[Challenge]:
    """The same task of the same course in other semesters, newest first."""
    return list(
        Challenge.objects.filter(
            semester__course_id=challenge.semester.course_id, task=challenge.task
        )
        .exclude(pk=challenge.pk)
        .select_related("semester")
        .order_by("-semester__starts_on", "slug")
    )
