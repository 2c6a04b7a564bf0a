"""Grade passback (LTI Assignment and Grade Services): a student's counted result goes to the
line item of its challenge in every LMS course linked to the challenge's semester.

When it is sent: ``submissions.standings`` signals every changed standing and every reveal by
staff; the receivers here send a task by name, after the transaction commits, to the
housekeeping queue (``lti.tasks``, which a worker runs). The task reads the standing as it is
then, so a message that arrives late or twice sends what is true now: the score posted is the
one computed at that moment, and an unchanged score is not posted again (``Passback``). A
result is sent only once the student may see it (``results_revealed_for``): for a challenge
with a private part, from the reveal on; the hourly ``push_revealed`` covers reveals that need
no event (the deadline passing).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from lti_tool.models import LtiContext, LtiLineItem
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from pylti1p3.service_connector import ServiceConnector

from accounts.models import ExternalIdentity
from courses.formatting import format_score
from courses.models import Challenge, Enrollment
from lti.models import ChallengeLineItem, ContextSemester, Passback, Placement
from submissions.doorbell import after_commit
from submissions.health import HEALTH_NOTES
from submissions.models import Standing, Submission
from submissions.policies import results_revealed, results_revealed_for
from submissions.standings import results_revealed as revealed_signal
from submissions.standings import standing_changed

logger = logging.getLogger(__name__)

#: task names, shared with ``lti.tasks``
PUSH_SCORE = "lti.tasks.push_score"
PUSH_CHALLENGE = "lti.tasks.push_challenge"

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"


class PlatformFailed(Exception):
    """The platform did not take a line item or a score; worth another try later."""


# --- when --------------------------------------------------------------------------------------


def connect() -> None:
    standing_changed.connect(_standing_changed, dispatch_uid="lti_passback_standing")
    revealed_signal.connect(_challenge_revealed, dispatch_uid="lti_passback_reveal")
    if failed_note not in HEALTH_NOTES:
        HEALTH_NOTES.append(failed_note)


def _linked(challenge_id: int) -> bool:
    return ContextSemester.objects.filter(semester__challenges__pk=challenge_id).exists()


def send_after_commit(task: str, *args: Any) -> None:
    """Send ``task`` by name once the current transaction commits; a broker that is down
    loses this message only (logged): ``lti_push_grades`` and the hourly push send again."""
    after_commit(
        current_app.send_task,
        task,
        what=f"sending {task}{args!r}",
        args=list(args),
        queue=settings.HOUSEKEEPING_QUEUE,
    )


def _standing_changed(sender: Any, enrollment_id: int, challenge_id: int, **_: Any) -> None:
    if _linked(challenge_id):
        send_after_commit(PUSH_SCORE, enrollment_id, challenge_id)


def _challenge_revealed(sender: Any, challenge: Challenge, **_: Any) -> None:
    if _linked(challenge.pk):
        send_after_commit(PUSH_CHALLENGE, challenge.pk)


# --- what --------------------------------------------------------------------------------------


def score_payload(
    enrollment: Enrollment, challenge: Challenge, user_id: str
) -> dict[str, Any] | None:
    """The AGS score of ``enrollment``'s counted result, or None while there is none the
    student may see."""
    standing = Standing.objects.filter(enrollment=enrollment, challenge=challenge).first()
    if standing is None:
        return None
    if challenge.has_split:
        if not results_revealed_for(challenge, enrollment):
            return None
        best_id, score, passed = standing.final_best_id, standing.final_score, standing.final_passed
    else:
        best_id, score, passed = standing.best_id, standing.score, standing.passed
    if best_id is None:
        return None
    times = Submission.objects.filter(pk=best_id).values("finished_at", "created_at").first()
    if times is None:
        return None
    recorded = times["finished_at"] or times["created_at"]
    return {
        "scoreGiven": 1 if passed else 0,
        "scoreMaximum": 1,
        "comment": f"score {format_score(score, challenge.kind.score_display)}",
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "userId": user_id,
        "timestamp": recorded.isoformat(),
    }


# --- how ---------------------------------------------------------------------------------------


@dataclass
class PushReport:
    sent: int = 0
    unchanged: int = 0
    not_shown: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.sent} score(s) sent, {self.unchanged} unchanged, {self.not_shown} not"
            f" shown to the student yet, {self.failed} failed"
        )


def _scopes(context: LtiContext) -> list[str]:
    scopes = [SCOPE_SCORE]
    if context.can_manage_lineitems:
        scopes.append(SCOPE_LINEITEM)
    if context.can_query_lineitems and not context.can_manage_lineitems:
        scopes.append("https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly")
    return scopes


def _service(context: LtiContext) -> AssignmentsGradesService:
    registration = context.deployment.registration.to_registration()
    return AssignmentsGradesService(
        ServiceConnector(registration),
        {"scope": _scopes(context), "lineitems": context.lineitems_url},  # type: ignore[typeddict-item]
    )


def line_item_for(context: LtiContext, challenge: Challenge) -> LtiLineItem:
    """The challenge's line item in ``context``, created once by the tool (found by its tag
    first, so a lost row never makes a second one)."""
    existing = ChallengeLineItem.objects.select_related("line_item").filter(
        context=context, challenge=challenge
    )
    row = existing.first()
    if row is not None:
        return row.line_item
    placement = (
        Placement.objects.select_related("resource_link")
        .filter(resource_link__context=context, challenge=challenge)
        .order_by("pk")
        .first()
    )
    wanted = LineItem().set_label(challenge.title).set_tag(challenge.slug).set_score_maximum(1)
    if placement is not None:
        wanted.set_resource_link_id(placement.resource_link.id_on_platform)
    try:
        made = _service(context).find_or_create_lineitem(wanted, find_by="tag")
    except Exception as exc:
        raise PlatformFailed(f"line item for {challenge.slug}: {exc}") from exc
    url = made.get_id()
    if not url:
        raise PlatformFailed(
            f"the platform returned a line item without an id for {challenge.slug}"
        )
    with transaction.atomic():
        item, _created = LtiLineItem.objects.update_or_create(
            url=url,
            defaults={
                "context": context,
                "maximum_score": 1,
                "label": challenge.title,
                "tag": challenge.slug,
                "resource_link": None if placement is None else placement.resource_link,
            },
        )
        ChallengeLineItem.objects.get_or_create(
            context=context, challenge=challenge, defaults={"line_item": item}
        )
    return item


def push_one(
    context: LtiContext,
    enrollment: Enrollment,
    challenge: Challenge,
    *,
    force: bool = False,
    last_try: bool = True,
    report: PushReport | None = None,
) -> PushReport:
    """Post ``enrollment``'s score to ``context`` if it changed (or ``force``); raises
    :class:`PlatformFailed` when the platform did not take it (recorded on the row; marked
    failed on the ``last_try``)."""
    report = report or PushReport()
    registration = context.deployment.registration
    identity = ExternalIdentity.objects.filter(
        user_id=enrollment.user_id, issuer=registration.issuer
    ).first()
    if identity is None or not (context.lineitems_url and context.can_publish_scores):
        return report
    payload = score_payload(enrollment, challenge, identity.subject)
    if payload is None:
        report.not_shown += 1
        return report
    passback, _created = Passback.objects.get_or_create(
        context=context, challenge=challenge, enrollment=enrollment
    )
    if not force and passback.state == Passback.State.SENT and passback.sent_payload == payload:
        report.unchanged += 1
        return report
    try:
        item = line_item_for(context, challenge)
        grade = (
            Grade()
            .set_score_given(payload["scoreGiven"])
            .set_score_maximum(payload["scoreMaximum"])
            .set_comment(payload["comment"])
            .set_activity_progress(payload["activityProgress"])
            .set_grading_progress(payload["gradingProgress"])
            .set_user_id(payload["userId"])
            .set_timestamp(payload["timestamp"])
        )
        try:
            _service(context).put_grade(grade, LineItem({"id": item.url}))
        except Exception as exc:
            raise PlatformFailed(
                f"score for {enrollment.handle} in {challenge.slug}: {exc}"
            ) from exc
    except PlatformFailed as exc:
        Passback.objects.filter(pk=passback.pk).update(
            state=Passback.State.FAILED if last_try else Passback.State.PENDING,
            attempts=passback.attempts + 1,
            error=str(exc)[:2000],
            updated_at=timezone.now(),
        )
        report.failed += 1
        report.errors.append(str(exc))
        raise
    Passback.objects.filter(pk=passback.pk).update(
        state=Passback.State.SENT,
        sent_payload=payload,
        sent_at=timezone.now(),
        attempts=passback.attempts + 1,
        error="",
        updated_at=timezone.now(),
    )
    report.sent += 1
    return report


def contexts_of(challenge: Challenge) -> list[LtiContext]:
    return [
        link.context
        for link in ContextSemester.objects.select_related(
            "context__deployment__registration"
        ).filter(semester_id=challenge.semester_id)
    ]


def push_score(
    enrollment_id: int, challenge_id: int, *, force: bool = False, last_try: bool = True
) -> PushReport:
    """One student's score in one challenge, to every LMS course linked to its semester."""
    report = PushReport()
    challenge = Challenge.objects.select_related("semester__course").filter(pk=challenge_id).first()
    enrollment = Enrollment.objects.filter(pk=enrollment_id).first()
    if challenge is None or enrollment is None:
        return report  # deleted since: nothing to send
    failure: PlatformFailed | None = None
    for context in contexts_of(challenge):
        try:
            push_one(context, enrollment, challenge, force=force, last_try=last_try, report=report)
        except PlatformFailed as exc:
            failure = exc
    if failure is not None:
        raise failure
    return report


def push_challenge(challenge: Challenge, *, force: bool = False) -> PushReport:
    """Every student's score in ``challenge`` (``lti_push_grades``, a reveal): failures are
    counted and recorded, the others still sent."""
    report = PushReport()
    contexts = contexts_of(challenge)
    if not contexts:
        return report
    enrollments = Enrollment.objects.filter(
        semester_id=challenge.semester_id, role=Enrollment.Role.STUDENT
    ).order_by("pk")
    for enrollment in enrollments:
        for context in contexts:
            # counted and recorded on its row; the others are still sent
            with contextlib.suppress(PlatformFailed):
                push_one(context, enrollment, challenge, force=force, report=report)
    return report


def push_revealed() -> PushReport:
    """Scores of challenges whose final results are out (a deadline passed, no event), for
    the linked semesters; unchanged scores cost no request."""
    report = PushReport()
    linked = ContextSemester.objects.values("semester_id")
    for challenge in Challenge.objects.select_related("semester__course").filter(
        semester_id__in=linked
    ):
        if challenge.has_split and not results_revealed(challenge):
            continue
        part = push_challenge(challenge)
        report.sent += part.sent
        report.unchanged += part.unchanged
        report.not_shown += part.not_shown
        report.failed += part.failed
        report.errors += part.errors
    return report


def failed_note() -> str | None:
    """The health page's line: passbacks that failed after every retry."""
    failed = Passback.objects.filter(state=Passback.State.FAILED)
    latest = failed.order_by("-updated_at").values_list("error", flat=True)
    errors = list(latest[:1])  # one query while all is well
    if not errors:
        return None
    count = failed.count()
    last = errors[0] or ""
    return ngettext(
        "Grade passback to the LMS failed for %(count)d result (latest: %(error)s);"
        " run lti_push_grades once the platform answers again.",
        "Grade passback to the LMS failed for %(count)d results (latest: %(error)s);"
        " run lti_push_grades once the platform answers again.",
        count,
    ) % {"count": count, "error": last[:200] or _("no detail")}
