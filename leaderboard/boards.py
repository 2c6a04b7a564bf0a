"""The ranking, shared by the leaderboard page, the staff grade book and the JSON API.

Each enrolled student is ranked by the submission that counts under the challenge's scoring
policy (``submissions.standings``): higher score first (an infinite score first of all), ties
broken by the earlier upload. Before the reveal the public score ranks; after it
(``submissions.policies.results_revealed``) the private score ranks and pass/fail is judged on
it, and each row says how many places its student moved. Which phase a board shows is the
caller's choice: a student whose own window is still open after staff revealed early sees the
public phase (``results_revealed_to``). Ranks are honest: equal scores share a
rank (1, 2, 2, 4) and are listed earlier upload first. Teaching assistants are not ranked, and
neither is a submission without a score (failed, still grading, or NaN).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, cast

from django.db.models import F, Max, QuerySet

from courses.models import Challenge, Enrollment
from submissions.models import Standing
from submissions.policies import late_days_by_enrollment, results_revealed


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    handle: str
    score: float
    #: the kind's headline figures beside the score (keypoints: {"mse": ...}), as stored
    headline: dict[str, Any]
    passed: bool
    #: uploads to this challenge, not counting those that failed for a platform reason
    submissions: int
    submitted_at: datetime
    submission_id: uuid.UUID
    #: to highlight a signed-in student's own row; never shown
    user_id: int = field(repr=False, default=0)
    #: after the reveal of a split challenge: the counted submission's public score, and the
    #: places gained since the public ranking (negative: lost); None otherwise
    public_score: float | None = None
    moved: int | None = None
    #: a student's row, not the course's baseline (``leaderboard.board_pages.BaselineRow``)
    baseline: ClassVar[bool] = False


@dataclass(frozen=True)
class Leaderboard:
    rows: list[LeaderboardRow]
    #: students enrolled in the challenge's semester, ranked or not
    enrolled: int

    @property
    def passed(self) -> int:
        return sum(1 for row in self.rows if row.passed)

    @property
    def unranked(self) -> int:
        """Enrolled students without a graded submission."""
        return self.enrolled - len(self.rows)

    def index_of(self, user_id: int | None) -> int | None:
        """Position of the user's row in ``rows``, to find their page."""
        for index, row in enumerate(self.rows):
            if row.user_id == user_id:
                return index
        return None


@dataclass(frozen=True)
class GradebookRow:
    """One enrolled student for staff: who they are and how far they got."""

    username: str
    full_name: str
    email: str
    handle: str
    rank: int | None
    best_score: float | None
    headline: dict[str, Any]
    passed: bool
    submissions: int
    best_submitted_at: datetime | None
    #: late days the student has spent in the semester, over all its challenges
    late_days: int = 0


#: the standing's columns of each phase: before the reveal, and after it
_PHASES = {
    False: {
        "score": "score",
        "passed": "passed",
        "headline": "headline",
        "best_id": "best_id",
        "created_at": "best_created_at",
        "public_score": "score",
    },
    True: {
        "score": "final_score",
        "passed": "final_passed",
        "headline": "final_headline",
        "best_id": "final_best_id",
        "created_at": "final_created_at",
        "public_score": "final_public_score",
    },
}


def _best_submissions(challenge: Challenge, revealed: bool = False) -> list[dict[str, Any]]:
    """One query: each student's counted submission, best first, read from their maintained
    standings (``submissions.standings``) rather than ranked anew from every upload; the public
    phase's columns before the reveal, the private phase's after it."""
    columns = _PHASES[revealed]
    best = (
        Standing.objects.filter(
            challenge=challenge,
            enrollment__role=Enrollment.Role.STUDENT,
            **{f"{columns['score']}__isnull": False},
        )
        .order_by(F(columns["score"]).desc(), columns["created_at"], columns["best_id"])
        .values(
            "enrollment_id",
            "uploads",
            handle=F("enrollment__handle"),
            user_id=F("enrollment__user_id"),
            # Aliased: the phase's columns carry the model's own field names.
            **{f"the_{name}": F(column) for name, column in columns.items()},
        )
    )
    # Typed rows would name every field twice; the callers read them by key right below.
    return cast(list[dict[str, Any]], list(best))


def _public_ranks(challenge: Challenge) -> dict[int, int]:
    """One query: each student's rank on the public board, by enrolment."""
    best = _best_submissions(challenge, revealed=False)
    ranks = _ranks([b["the_score"] for b in best])
    return {b["enrollment_id"]: rank for rank, b in zip(ranks, best, strict=True)}


def _upload_counts(challenge: Challenge) -> dict[int, int]:
    """One query: uploads per enrolment to ``challenge``, from the standings."""
    return dict(
        Standing.objects.filter(challenge=challenge).values_list("enrollment_id", "uploads")
    )


def _students(challenge: Challenge) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(
        semester_id=challenge.semester_id, role=Enrollment.Role.STUDENT
    ).order_by()


def _ranks(scores: list[float]) -> list[int]:
    """Standard competition ranking of scores sorted best first: 1, 2, 2, 4."""
    ranks: list[int] = []
    for position, score in enumerate(scores, start=1):
        # inf == inf in Python, so two perfect models share the first rank.
        ranks.append(ranks[-1] if ranks and score == scores[position - 2] else position)
    return ranks


#: how long a computed board may be reused; a new upload or result changes its key at once, so
#: this only bounds how long an edit that changes neither (a deletion in the admin) goes unseen
BOARD_CACHE_SECONDS = 60


def board_version(challenge: Challenge, revealed: bool | None = None) -> str:
    """What a board depends on: the latest change to the challenge's standings (uploads,
    results, re-grades, selections, deletions all recompute a standing), read in one index
    lookup, plus the challenge's rules and which phase ranks (``revealed``; None: the class's
    phase now)."""
    if revealed is None:
        revealed = results_revealed(challenge)
    latest = Standing.objects.filter(challenge=challenge).aggregate(changed=Max("changed_at"))
    moments = (latest["changed"], challenge.policy_changed_at)
    return "-".join(
        [f"{moment.timestamp():.6f}" if moment else "none" for moment in moments]
        + ["revealed" if revealed else "public"]
    )


# Computed boards of this process: (challenge id, phase) -> (version, computed at, board). Kept as
# objects, not in Django's cache, because unpickling 2,000 rows costs as much as a page render;
# boards are immutable, so sharing one between threads is safe.
_boards: dict[tuple[int, bool], tuple[str, float, Leaderboard]] = {}
_boards_lock = threading.Lock()


def leaderboard_build(challenge: Challenge, revealed: bool | None = None) -> Leaderboard:
    """The ranked board of ``challenge`` in one phase (``revealed``: the final one), computed
    once per change of ``board_version``; ``None``: the phase the class sees now.

    Ranking every submission costs tens of milliseconds at 40,000 uploads, and the night before
    a deadline hundreds of students reload the same board between two results.
    """
    if revealed is None:
        revealed = results_revealed(challenge)
    version = board_version(challenge, revealed)
    now = time.monotonic()
    with _boards_lock:
        hit = _boards.get((challenge.pk, revealed))
    if hit and hit[0] == version and now - hit[1] < BOARD_CACHE_SECONDS:
        return hit[2]
    board = leaderboard_compute(challenge, revealed)
    with _boards_lock:
        _boards[(challenge.pk, revealed)] = (version, now, board)
    return board


def leaderboard_forget() -> None:
    """Drop this process's computed boards (tests start from none)."""
    with _boards_lock:
        _boards.clear()


def leaderboard_compute(challenge: Challenge, revealed: bool | None = None) -> Leaderboard:
    """The ranked board of ``challenge``: two queries, whatever the number of students (three
    after the reveal of a split challenge, to say who moved)."""
    if revealed is None:
        revealed = results_revealed(challenge)
    best = _best_submissions(challenge, revealed)
    ranks = _ranks([b["the_score"] for b in best])
    moves = revealed and challenge.has_split
    before = _public_ranks(challenge) if moves else {}
    rows = [
        LeaderboardRow(
            rank=rank,
            handle=b["handle"],
            score=float(b["the_score"]),
            headline=b["the_headline"] or {},
            passed=bool(b["the_passed"]),
            submissions=b["uploads"],
            submitted_at=b["the_created_at"],
            submission_id=b["the_best_id"],
            user_id=b["user_id"],
            public_score=b["the_public_score"] if moves else None,
            moved=before[b["enrollment_id"]] - rank
            if moves and b["enrollment_id"] in before
            else None,
        )
        for rank, b in zip(ranks, best, strict=True)
    ]
    return Leaderboard(rows=rows, enrolled=_students(challenge).count())


def leaderboard_rows(challenge: Challenge, revealed: bool | None = None) -> list[LeaderboardRow]:
    """The ranked rows of ``challenge`` (the JSON API's view of the board)."""
    return leaderboard_build(challenge, revealed).rows


def gradebook_rows(challenge: Challenge) -> list[GradebookRow]:
    """Every student of the semester, ranked or not, by username, as the board ranks them now
    (public before the reveal, private after): four queries, a few more between the deadline
    and the end of the last personal window."""
    best = _best_submissions(challenge, results_revealed(challenge))
    late = late_days_by_enrollment(challenge)
    uploads = _upload_counts(challenge)
    ranks = _ranks([b["the_score"] for b in best])
    by_enrollment = {b["enrollment_id"]: (rank, b) for rank, b in zip(ranks, best, strict=True)}
    rows = []
    for student in _students(challenge).select_related("user").order_by("user__username"):
        rank, b = by_enrollment.get(student.pk, (None, None))
        user = student.user
        rows.append(
            GradebookRow(
                username=user.get_username(),
                full_name=user.get_full_name(),
                email=user.email,
                handle=student.handle,
                rank=rank,
                best_score=None if b is None else float(b["the_score"]),
                headline={} if b is None else b["the_headline"] or {},
                passed=b is not None and bool(b["the_passed"]),
                submissions=uploads.get(student.pk, 0),
                best_submitted_at=None if b is None else b["the_created_at"],
                late_days=late.get(student.pk, 0),
            )
        )
    return rows


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
