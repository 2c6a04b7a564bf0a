"""Checking a challenge with the staff's reference model before it opens: queued from the admin,
graded by a real worker on the hidden data in the sandbox (``worker.tasks.check_reference``),
recorded on the challenge, and out of date once the data, threshold or limits change."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from courses.models import Challenge
from grader.evaluate import json_value
from submissions import doorbell
from submissions.models import GradingRun
from submissions.results import GradingOutcome, evaluation_outcome, keep_log
from submissions.services import grading_time_limits
from submissions.standings import Rules, number_or_none, phase_of

logger = logging.getLogger(__name__)


class Status:
    QUEUED = "queued"
    GRADED = "graded"
    FAILED = "failed"


def reference_check_start(challenge: Challenge) -> bool:
    """Queue a check of ``challenge``'s reference model; False when it has none."""
    if not challenge.reference_model:
        return False
    with transaction.atomic():
        check = {
            **(challenge.reference_check or {}),
            "status": Status.QUEUED,
            "queued_at": timezone.now().isoformat(),
        }
        Challenge.objects.filter(pk=challenge.pk).update(reference_check=check)
        challenge.reference_check = check
        soft, hard = grading_time_limits(challenge)
        doorbell.ring_after_commit(doorbell.CHECK_REFERENCE, challenge.pk, soft=soft, hard=hard)
    return True


def reference_check_record(challenge: Challenge, outcome: GradingOutcome) -> dict[str, Any]:
    """Store how the check went: the score and verdict, or the error, and what it ran under."""
    evaluation = outcome.evaluation
    check: dict[str, Any] = {
        "status": Status.FAILED if evaluation is None else Status.GRADED,
        "finished_at": timezone.now().isoformat(),
        "dataset_hash": outcome.dataset_hash,
        "rules": challenge.grading_rules(),
    }
    # The last check in which the model passed: what the warnings compare against.
    check["last_good"] = (challenge.reference_check or {}).get("last_good")
    if evaluation is not None:
        score, passed, metrics = evaluation_outcome(evaluation)
        # The figures as a student's upload stores them (a split's public and private parts
        # too): the board's baseline row shows the part its phase shows.
        check |= {"score": json_value(score), "passed": passed, "metrics": metrics}
        if passed:
            check["last_good"] = {"dataset_hash": outcome.dataset_hash, "rules": check["rules"]}
    else:
        error = outcome.error
        check |= {
            "error": getattr(error, "message", str(error)),
            "code": getattr(error, "code", ""),
            "log": keep_log(getattr(error, "detail", "") or ""),
        }
    Challenge.objects.filter(pk=challenge.pk).update(reference_check=check)
    challenge.reference_check = check
    logger.info("challenge %s: reference check %s", challenge.slug, check["status"])
    return check


def reference_warnings(challenge: Challenge) -> list[str]:
    """Why the last successful check no longer vouches for the challenge (one query)."""
    check = challenge.reference_check or {}
    good = check.get("last_good")
    if not challenge.reference_model:
        return []
    if not good:
        return ["The reference model has not passed a check yet."]
    warnings = []
    rules, then = challenge.grading_rules(), good.get("rules", {})
    changed = sorted(key for key in rules if then.get(key) != rules[key])
    if changed:
        warnings.append(
            "Changed since the last successful reference check: " + ", ".join(changed) + "."
        )
    # The web host has no hidden data: the workers' latest grading says which data they use.
    latest = (
        GradingRun.objects.filter(submission__challenge=challenge)
        .exclude(dataset_hash="")
        .order_by("-finished_at")
        .values_list("dataset_hash", flat=True)
        .first()
    )
    if latest and latest != good.get("dataset_hash"):
        warnings.append("The hidden test data changed since the last successful reference check.")
    if check.get("status") == Status.GRADED and not check.get("passed"):
        warnings.append("The reference model does not pass the threshold.")
    return warnings


@dataclass(frozen=True)
class Baseline:
    """The reference model as one phase of the board sees it, like a student's standing."""

    score: float
    passed: bool
    headline: dict[str, Any]
    #: after the reveal of a split challenge: its public score, shown beside the private one
    public_score: float | None = None


def reference_baseline(challenge: Challenge, revealed: bool) -> Baseline | None:
    """The board's "Course baseline" row in one phase (the public part before the reveal, the
    private part after it), or None: the switch is off, or the last check did not pass. No
    query: everything is on the challenge."""
    check = challenge.reference_check or {}
    if not (challenge.show_baseline and challenge.reference_model):
        return None
    if check.get("status") != Status.GRADED or not check.get("passed"):
        return None
    metrics = check.get("metrics")
    if not isinstance(metrics, dict):
        if challenge.has_split:
            return None  # a check recorded before the parts were kept: nothing public to show
        metrics = {}
    rules = Rules.for_challenge(challenge)
    row = {"metrics": metrics, "score": number_or_none(check.get("score")), "passed": True}
    phase = phase_of(row, "private" if revealed else "public", rules)
    if phase.score is None:
        return None
    public = phase_of(row, "public", rules).score if revealed and rules.split else None
    return Baseline(
        score=phase.score, passed=phase.passed, headline=phase.headline, public_score=public
    )
