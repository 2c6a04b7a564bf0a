"""A challenge's course policies as they apply to one student: their own deadline (an
``Extension``), late days, their daily quota, marking uploads that count, when final results
come out (``results_revealed``: when the last personal window closes, or earlier by staff), and
what a student may see of a result before then (``shown_result``: the public part only).

Which submission counts, and by which score, is decided in one place: ``submissions.standings``.
This module answers "may this student upload or select now, until when, and what do they see".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from courses.models import Challenge, Enrollment, Extension
from submissions.models import GradingRun, RegradeBatch, Standing, Submission
from submissions.standings import number_or_none, part_metrics, standing_refresh

DAY = timedelta(days=1)


class PolicyRefused(Exception):
    """Something a policy does not allow now; ``code`` picks the API's status."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def extension_for(enrollment: Enrollment, challenge: Challenge) -> Extension | None:
    return Extension.objects.filter(enrollment=enrollment, challenge=challenge).first()


def personal_deadline(challenge: Challenge, extension: Extension | None) -> datetime:
    """The student's own deadline: the challenge's, or their extension's if later."""
    if extension is not None and extension.deadline > challenge.deadline:
        return extension.deadline
    return challenge.deadline


def days_late(deadline: datetime, at: datetime) -> int:
    """Whole days past ``deadline`` that an upload at ``at`` needs: the first second after the
    deadline is day 1, 24 h later day 2. 0 before the deadline."""
    if at < deadline:
        return 0
    return max(1, math.ceil((at - deadline) / DAY))


def _late_days(
    uploads: Any, challenges: dict[int, Challenge], extensions: dict[Any, Any]
) -> dict[int, dict[int, int]]:
    """Late days by enrolment and challenge from ``(enrollment_id, challenge_id, created_at)``:
    the lateness of each challenge's latest counting upload past the student's own deadline, so
    the first late upload of each day spends that day and later ones that day spend nothing."""
    spent: dict[int, dict[int, int]] = {}
    for enrollment_id, challenge_id, created_at in uploads:
        challenge = challenges.get(challenge_id)
        if challenge is None:
            continue
        extension = extensions.get((enrollment_id, challenge_id))
        late = days_late(personal_deadline(challenge, extension), created_at)
        if late:
            mine = spent.setdefault(enrollment_id, {})
            mine[challenge_id] = max(mine.get(challenge_id, 0), late)
    return spent


def late_days_spent(enrollment: Enrollment) -> dict[int, int]:
    """Late days each challenge of the student's semester has used, by challenge id."""
    challenges = {c.pk: c for c in Challenge.objects.filter(semester_id=enrollment.semester_id)}
    extensions = {
        (e.enrollment_id, e.challenge_id): e
        for e in Extension.objects.filter(enrollment=enrollment)
    }
    uploads = Submission.objects.filter(
        enrollment=enrollment, counts_for_quota=True, challenge_id__in=list(challenges)
    ).values_list("enrollment_id", "challenge_id", "created_at")
    return _late_days(uploads, challenges, extensions).get(enrollment.pk, {})


def _semester_late_days(semester_id: int) -> dict[int, dict[int, int]]:
    """Late days by enrolment and challenge in one semester: three queries."""
    challenges = {c.pk: c for c in Challenge.objects.filter(semester_id=semester_id)}
    if not challenges:
        return {}
    extensions = {
        (e.enrollment_id, e.challenge_id): e
        for e in Extension.objects.filter(challenge__semester_id=semester_id)
    }
    earliest = min(c.deadline for c in challenges.values())
    uploads = Submission.objects.filter(
        challenge_id__in=list(challenges), counts_for_quota=True, created_at__gte=earliest
    ).values_list("enrollment_id", "challenge_id", "created_at")
    return _late_days(uploads, challenges, extensions)


def late_days_by_enrollment(challenge: Challenge) -> dict[int, int]:
    """Late days each student of ``challenge``'s semester has spent there in total: three
    queries, none when the semester grants no late days (nobody can have spent any)."""
    if not challenge.semester.late_days:
        return {}
    spent = _semester_late_days(challenge.semester_id)
    return {enrollment_id: sum(days.values()) for enrollment_id, days in spent.items()}


def late_limit(challenge: Challenge, here: int, total: int) -> int:
    """The most late days one student may use on ``challenge``: what they spent here plus what
    is left of the semester's budget, within the challenge's cap (never below what they spent)."""
    limit = here + max(0, challenge.semester.late_days - total)
    if challenge.late_days_allowed is not None:
        limit = min(limit, challenge.late_days_allowed)
    return max(limit, here)


@dataclass(frozen=True)
class Window:
    """What one student may do in one challenge at one instant."""

    #: their own deadline (an extension's, if any)
    deadline: datetime
    extension: Extension | None
    #: uploads per rolling 24 hours, extra uploads of an extension included while it runs
    quota: int
    #: late days: spent on this challenge, spent in the whole semester, the semester's budget
    late_here: int
    late_total: int
    late_budget: int
    #: the most late days this challenge may still use (cap and budget together)
    late_limit: int
    #: the end of the late days the student may still spend here (== deadline without any)
    closes_at: datetime

    @property
    def late_left(self) -> int:
        return max(0, self.late_budget - self.late_total)


def window_for(enrollment: Enrollment, challenge: Challenge, now: datetime) -> Window:
    extension = extension_for(enrollment, challenge)
    deadline = personal_deadline(challenge, extension)
    # Without a budget nobody can have spent a late day: no queries.
    spent = late_days_spent(enrollment) if challenge.semester.late_days else {}
    here = spent.get(challenge.pk, 0)
    total = sum(spent.values())
    budget = challenge.semester.late_days
    limit = late_limit(challenge, here, total)
    quota = challenge.daily_quota
    if extension is not None and now < extension.deadline:
        quota += extension.extra_uploads
    return Window(
        deadline=deadline,
        extension=extension,
        quota=quota,
        late_here=here,
        late_total=total,
        late_budget=budget,
        late_limit=limit,
        closes_at=deadline + limit * DAY,
    )


# --- when final results come out --------------------------------------------------------------
#
# A student with late days or an extension may still upload and select after the challenge's
# deadline, so showing them private scores then would let them pick models by the private part.
# Final results therefore come out on their own only when the last personal window closes;
# staff may reveal them earlier, and a student whose window is still open then keeps seeing
# the public phase (their own uploads' public scores, the public board) until it closes.


def windows_closing(challenge: Challenge) -> dict[int, datetime]:
    """When each student's window on ``challenge`` closes, by enrolment: their own deadline
    plus the late days they may still spend there. Five queries at most, whatever the size of
    the class; teaching assistants have no window."""
    learners = Enrollment.objects.filter(
        semester_id=challenge.semester_id, role=Enrollment.Role.STUDENT
    ).values_list("pk", flat=True)
    extended = dict(
        Extension.objects.filter(challenge=challenge).values_list("enrollment_id", "deadline")
    )
    spent = _semester_late_days(challenge.semester_id) if challenge.semester.late_days else {}
    closing = {}
    for enrollment_id in learners:
        deadline = max(challenge.deadline, extended.get(enrollment_id, challenge.deadline))
        mine = spent.get(enrollment_id, {})
        limit = late_limit(challenge, mine.get(challenge.pk, 0), sum(mine.values()))
        closing[enrollment_id] = deadline + limit * DAY
    return closing


def final_results_at(challenge: Challenge) -> datetime | None:
    """When final results come out without staff: the challenge's deadline, or the end of the
    last personal window (extensions and the late days anyone may still spend) if later. None
    while staff hold them back. A closed semester takes no more uploads: its deadline."""
    if challenge.hold_results:
        return None
    if challenge.semester.closed:
        return challenge.deadline
    return _last_close(challenge)


def _last_close(challenge: Challenge) -> datetime:
    return max([challenge.deadline, *windows_closing(challenge).values()])


def _latest_possible_close(challenge: Challenge) -> datetime:
    """An upper bound of ``final_results_at`` in one query: the latest extension plus the most
    late days the challenge allows anyone (a student who has spent none)."""
    extended = Extension.objects.filter(challenge=challenge).aggregate(latest=Max("deadline"))
    latest = max(challenge.deadline, extended["latest"] or challenge.deadline)
    return latest + late_limit(challenge, here=0, total=0) * DAY


def _staff_revealed(challenge: Challenge, at: datetime) -> bool:
    return challenge.revealed_at is not None and challenge.revealed_at <= at


def _no_window_can_be_open(challenge: Challenge, at: datetime) -> bool:
    """The cheap answer: the semester is closed, or ``at`` is past the latest close anyone
    could reach (no query before the deadline, one after it)."""
    if challenge.semester.closed:
        return True
    return at >= challenge.deadline and at >= _latest_possible_close(challenge)


def _every_window_closed(challenge: Challenge, at: datetime) -> bool:
    """Whether nobody may upload to ``challenge`` any more: five more queries only between the
    deadline and the latest close anyone could reach."""
    if _no_window_can_be_open(challenge, at):
        return True
    return at >= challenge.deadline and at >= _last_close(challenge)


def results_revealed(challenge: Challenge, at: datetime | None = None) -> bool:
    """Whether final results are out for the class: staff revealed them, or (unless held) the
    last personal window has closed. No query before the deadline; one for most of the time
    after the last window closed."""
    at = at or timezone.now()
    if _staff_revealed(challenge, at):
        return True
    return not challenge.hold_results and _every_window_closed(challenge, at)


def _revealed_for(
    challenge: Challenge, at: datetime | None, enrollment_of: Callable[[], Enrollment | None]
) -> bool:
    """The one rule behind ``results_revealed_for`` and its callers: the class's phase, and
    after an early reveal by staff the student's own window; ``enrollment_of`` is called (a
    query, often) only then."""
    at = at or timezone.now()
    if not _staff_revealed(challenge, at):
        return not challenge.hold_results and _every_window_closed(challenge, at)
    if _no_window_can_be_open(challenge, at):
        return True
    enrollment = enrollment_of()
    if enrollment is None or enrollment.role != Enrollment.Role.STUDENT:
        return True
    return window_for(enrollment, challenge, at).closes_at <= at


def results_revealed_for(
    challenge: Challenge, enrollment: Enrollment | None, at: datetime | None = None
) -> bool:
    """Whether ``enrollment``'s student sees final results (their own uploads' private scores
    and the board's final phase): when the class does, and their own window has closed. Staff,
    teaching assistants and visitors (``None``) see what the class sees."""
    return _revealed_for(challenge, at, lambda: enrollment)


def results_revealed_to(challenge: Challenge, user: Any, at: datetime | None = None) -> bool:
    """``results_revealed_for`` the student enrolled as ``user`` in the challenge's semester
    (one more query only in the rare time after an early reveal)."""
    if not getattr(user, "is_authenticated", False):
        return results_revealed(challenge, at)
    return _revealed_for(
        challenge,
        at,
        lambda: Enrollment.objects.filter(
            semester_id=challenge.semester_id, user_id=user.pk
        ).first(),
    )


@dataclass(frozen=True)
class OpenWindow:
    """A student who may still upload: what staff are told before an early reveal."""

    enrollment: Enrollment
    closes_at: datetime


def windows_open(challenge: Challenge, at: datetime | None = None) -> list[OpenWindow]:
    """The students whose window on ``challenge`` is still open at ``at``, closing last first."""
    at = at or timezone.now()
    if challenge.semester.closed:
        return []
    closing = {pk: when for pk, when in windows_closing(challenge).items() if when > at}
    people = Enrollment.objects.filter(pk__in=list(closing)).select_related("user")
    return sorted(
        (OpenWindow(enrollment, closing[enrollment.pk]) for enrollment in people),
        key=lambda window: (-window.closes_at.timestamp(), window.enrollment.handle),
    )


# --- marking uploads that count ---------------------------------------------------------------


def selection_open(submission: Submission, now: datetime) -> bool:
    """Marking closes with the student's own deadline, or when their late days here end."""
    challenge = submission.challenge
    if challenge.semester.closed:
        return False
    extension = extension_for(submission.enrollment, challenge)
    deadline = personal_deadline(challenge, extension)
    here = (
        late_days_spent(submission.enrollment).get(challenge.pk, 0)
        if challenge.semester.late_days
        else 0
    )
    return now < deadline + here * DAY


def submission_select(submission: Submission, selected: bool, now: datetime | None = None) -> None:
    """Mark or unmark ``submission`` as one that counts; raises ``PolicyRefused``."""
    now = now or timezone.now()
    challenge = submission.challenge
    if challenge.scoring != Challenge.Scoring.SELECTED:
        raise PolicyRefused(
            "not_selectable", "This challenge does not let students select uploads."
        )
    if submission.status != Submission.Status.GRADED or submission.score is None:
        raise PolicyRefused("not_graded", "Only a graded upload can be selected.")
    if not selection_open(submission, now):
        raise PolicyRefused("deadline", "The deadline has passed: the selection is final.")
    with transaction.atomic():
        # One student's selections change one at a time, so two at once cannot exceed the cap.
        Enrollment.objects.select_for_update().filter(pk=submission.enrollment_id).exists()
        if selected and not submission.selected:
            marked = Submission.objects.filter(
                enrollment_id=submission.enrollment_id, challenge=challenge, selected=True
            ).count()
            if marked >= challenge.max_selected:
                raise PolicyRefused(
                    "too_many_selected",
                    f"You have already selected {challenge.max_selected} uploads; unselect one"
                    " first.",
                )
        Submission.objects.filter(pk=submission.pk).update(selected=selected)
        submission.selected = selected
        standing_refresh(submission.enrollment_id, challenge.pk)


def submission_counted(submission: Submission, at: datetime | None = None) -> bool:
    """Whether ``submission`` is the one of its student that counts now (one query)."""
    revealed = _revealed_to_owner(submission, at)
    column = "final_best_id" if revealed else "best_id"
    counted = (
        Standing.objects.filter(
            enrollment_id=submission.enrollment_id, challenge_id=submission.challenge_id
        )
        .values_list(column, flat=True)
        .first()
    )
    return counted == submission.pk


# --- what a student sees of a result ----------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """A result as its student may see it now: before the reveal of a split challenge the
    public part only (score, pass and figures), after it the private score that ranks, with
    every figure of both parts and the whole set."""

    score: float | None
    passed: bool | None
    metrics: dict[str, Any]
    public_score: float | None
    #: None until the reveal, and for a challenge without a split
    private_score: float | None
    revealed: bool


#: figures of a split result that say nothing about the private part
_SPLIT_FACTS = ("public_count", "private_count", "split_seed", "public_fraction", "count")


def shown_result(submission: Submission, at: datetime | None = None) -> Shown:
    """``submission``'s result as its student may see it at ``at``."""
    challenge = submission.challenge
    return shown_figures(
        challenge,
        graded=submission.status == Submission.Status.GRADED,
        score=submission.score,
        passed=submission.passed,
        metrics=submission.metrics,
        revealed=_revealed_to_owner(submission, at),
    )


def _revealed_to_owner(submission: Submission, at: datetime | None) -> bool:
    """``results_revealed_for`` the submission's student, loading the student only after an
    early reveal (a list of uploads costs no query per row)."""
    return _revealed_for(submission.challenge, at, lambda: submission.enrollment)


def shown_earlier(regrade: GradingRun, at: datetime | None = None) -> Shown | None:
    """The result a published re-grade replaced, under the same rule as the current one (its
    stored whole-set score less the public part would tell the private part before the reveal):
    the result of the run that gave the submission its result before, None if it had none."""
    submission = regrade.submission
    published = regrade.batch.published_at if regrade.batch else None
    earlier = (
        submission.runs.filter(outcome__in=[GradingRun.Outcome.GRADED, GradingRun.Outcome.REJECTED])
        .exclude(pk=regrade.pk)
        .filter(
            Q(batch__isnull=True)
            | Q(batch__status=RegradeBatch.Status.PUBLISHED, batch__published_at__lt=published)
        )
        .order_by("-started_at")
        .first()
    )
    challenge = submission.challenge
    if earlier is None and regrade.previous_score is not None and not challenge.has_split:
        # No run left of the earlier result (made before runs were kept): without a split its
        # stored score is all there is to know, and tells nothing hidden.
        return shown_figures(
            challenge,
            graded=True,
            score=regrade.previous_score,
            passed=regrade.previous_passed,
            metrics={},
            revealed=True,
        )
    if earlier is None or earlier.outcome != GradingRun.Outcome.GRADED:
        return None
    return shown_figures(
        challenge,
        graded=True,
        score=earlier.score,
        passed=earlier.passed,
        metrics=earlier.metrics,
        revealed=_revealed_to_owner(submission, at),
    )


def shown_figures(
    challenge: Challenge,
    *,
    graded: bool,
    score: float | None,
    passed: bool | None,
    metrics: Any,
    revealed: bool,
) -> Shown:
    """The one rule for what a student sees of a result: before the reveal of a split
    challenge the public part only, after it the private score that ranks."""
    metrics = metrics if isinstance(metrics, dict) else {}
    public = part_metrics(metrics, "public") if challenge.has_split else None
    private = part_metrics(metrics, "private") if challenge.has_split else None
    if not graded or public is None or private is None:
        return Shown(score, passed, metrics, score if graded else None, None, revealed)
    key, kind = challenge.score_key, challenge.kind
    public_score = number_or_none(public.get(key))
    if revealed:
        private_score = number_or_none(private.get(key))
        passed = private_score is not None and kind.passed(private, challenge.threshold, key)
        return Shown(private_score, passed, metrics, public_score, private_score, revealed)
    # Nothing of the private part, the whole set's figures included: the whole less the public
    # part would give it away.
    visible = {**public, **{k: metrics[k] for k in _SPLIT_FACTS if k in metrics}}
    visible["passed"] = public_score is not None and kind.passed(public, challenge.threshold, key)
    return Shown(public_score, visible["passed"], visible, public_score, None, revealed)
