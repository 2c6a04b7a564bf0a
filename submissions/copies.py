"""Finding copied models: each graded upload's fingerprints, and the pairs of uploads of
different students that look copied. Staff only (docs/staff.md, "Copies").

Computed when a grading is recorded (``submissions.results.grading_record``) and when a
re-grade is published (``submissions.regrade.batches``), never when a page loads:
``copies_record`` stores the submission's fingerprints and its sketch's bucket keys, then
replaces every pair it is part of. Candidates come from indexed lookups only: the uploads with
the same weights fingerprint, the same prediction fingerprint, or one of its sketch's bucket
keys (``grader.fingerprints.band_keys``); only those are compared, so grading one upload costs
a handful of queries and a few sketch comparisons, not one per student. Of the uploads with the
same fingerprint only the first ``COPIES_EXACT_PAIRS`` students' are paired with it, so a file a
whole class hands in gives pairs in proportion to its uploads, not to their square.

"The same challenge" across semesters is what the boards link as such
(``leaderboard.boards.challenge_other_semesters``): the course's challenges of the same task
kind. Weights are compared across all of them; predictions only between uploads graded on the
same hidden test set (the challenges' ``data_dir``): on another set they say nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Case, IntegerField, Q, Value, When

from courses.models import Challenge, Course, Enrollment
from grader.fingerprints import band_keys, sketch_from_bytes
from grader.kinds import TaskKind
from submissions.models import CopyBucket, CopyPair, GradingRun, Submission

logger = logging.getLogger(__name__)

Evidence = CopyPair.Evidence


@dataclass(frozen=True)
class Prints:
    """One result's fingerprints (``grader.fingerprints``); blank ones are not compared."""

    weights: str = ""
    predictions: str = ""
    sketch: bytes = b""

    @classmethod
    def of_run(cls, run: GradingRun) -> Prints:
        return cls(
            run.weights_fingerprint, run.predictions_fingerprint, bytes(run.predictions_sketch)
        )

    def fields(self) -> dict[str, Any]:
        """As the columns of ``Submission`` and ``GradingRun`` hold them."""
        return {
            "weights_fingerprint": self.weights,
            "predictions_fingerprint": self.predictions,
            "predictions_sketch": self.sketch,
        }


def near_threshold(kind: TaskKind) -> float:
    """From which similarity two uploads' predictions are near-identical: the
    ``COPIES_NEAR_THRESHOLDS`` setting for the kind, else the kind's own."""
    value = (settings.COPIES_NEAR_THRESHOLDS or {}).get(kind.name, kind.near_threshold)
    return float(value)


def same_challenge(challenge: Challenge) -> Q:
    """The challenges that count as this one in any semester of its course."""
    return Q(
        challenge__semester__course_id=challenge.semester.course_id,
        challenge__task=challenge.task,
    )


def copies_record(submission: Submission, prints: Prints | None) -> int:
    """Store ``submission``'s fingerprints (None: it has no graded result) and replace the
    pairs it is part of; return how many it now has. Best effort: a failure is logged and the
    grade stands."""
    try:
        found = _record(submission, prints or Prints())
    except Exception:
        logger.exception("submission %s: finding copies failed", submission.pk)
        return 0
    logger.info("submission %s: copies checked, %d pairs", submission.pk, found)
    return found


def _record(submission: Submission, prints: Prints) -> int:
    challenge = Challenge.objects.select_related("semester").get(pk=submission.challenge_id)
    kind = challenge.kind
    threshold = near_threshold(kind)
    sketch = sketch_from_bytes(kind, prints.sketch)
    # Predictions that ignore the input (a constant model) match every other such upload: only
    # their weights are compared, and they go in no bucket.
    blind = kind.copy_input_blind(sketch)
    keys = band_keys(kind, sketch, threshold) if len(sketch) and not blind else []
    matched = Prints(weights=prints.weights) if blind else prints
    # First committed on its own: an upload graded at the same time then finds this one
    # (below, each takes the lock after its own fingerprints are visible).
    with transaction.atomic():
        Submission.objects.filter(pk=submission.pk).update(
            weights_fingerprint=prints.weights,
            predictions_fingerprint=prints.predictions,
            predictions_sketch=prints.sketch,
        )
        CopyBucket.objects.filter(submission_id=submission.pk).delete()
        CopyBucket.objects.bulk_create(CopyBucket(submission_id=submission.pk, key=k) for k in keys)
    with transaction.atomic():
        # One at a time per course: two uploads graded together never miss each other.
        list(
            Course.objects.select_for_update()
            .filter(pk=challenge.semester.course_id)
            .values_list("pk", flat=True)
        )
        CopyPair.objects.filter(Q(first_id=submission.pk) | Q(second_id=submission.pk)).delete()
        if not (matched.weights or matched.predictions or keys):
            return 0
        pairs = [
            _pair(submission, other, evidence, similarity)
            for other, evidence, similarity in _matches(
                submission, challenge, matched, sketch, keys, threshold
            )
        ]
        CopyPair.objects.bulk_create(pairs)
    return len(pairs)


def _matches(
    submission: Submission,
    challenge: Challenge,
    prints: Prints,
    sketch: Any,
    keys: list[str],
    threshold: float,
) -> list[tuple[dict[str, Any], str, float]]:
    """The other students' graded uploads that look copied from (or to) ``submission``.

    Uploads with the same weights or predictions fingerprint are an exact group: this one is
    paired with the earliest upload of each of the ``COPIES_EXACT_PAIRS`` students who handed
    the same thing in first, not with every one (a starter model handed in unchanged by a whole
    class would otherwise give a pair per two of its uploads). Near-identical predictions are
    looked for among the bucket's other uploads, the exact group left out.
    """
    user_id, role = Enrollment.objects.values_list("user_id", "role").get(
        pk=submission.enrollment_id
    )
    if role != Enrollment.Role.STUDENT:
        return []  # a TA's upload (trying the challenge out) is nobody's copy
    others = (
        Submission.objects.filter(same_challenge(challenge))
        .filter(status=Submission.Status.GRADED, enrollment__role=Enrollment.Role.STUDENT)
        .exclude(enrollment__user_id=user_id)
        .values(
            "pk",
            "created_at",
            "enrollment__user_id",
            "weights_fingerprint",
            "predictions_fingerprint",
            "predictions_sketch",
            "challenge__data_dir",
        )
    )
    exact = Q()
    if prints.weights:
        exact |= Q(weights_fingerprint=prints.weights)
    if prints.predictions:
        exact |= Q(
            predictions_fingerprint=prints.predictions, challenge__data_dir=challenge.data_dir
        )
    matches: list[tuple[dict[str, Any], str, float]] = []
    if exact:
        limit = settings.COPIES_EXACT_PAIRS
        students: set[int] = set()
        # A bounded read, ten rows per student sought: a student who handed the same file in
        # many times counts once (should the first rows be a few students' repeats, fewer
        # students than the limit are paired; the later ones still find this upload).
        for other in others.filter(exact).order_by("created_at", "pk")[: limit * 10]:
            if len(students) == limit:
                break
            if other["enrollment__user_id"] in students:
                continue
            found = _match(challenge, prints, sketch, other, threshold)
            if found is not None:
                students.add(other["enrollment__user_id"])
                matches.append((dict(other), *found))
    if keys:
        near = others.filter(pk__in=CopyBucket.objects.filter(key__in=keys).values("submission_id"))
        if exact:
            near = near.exclude(exact)
        for other in near:
            found = _match(challenge, prints, sketch, other, threshold)
            if found is not None:
                matches.append((dict(other), *found))
    return matches


def _match(
    challenge: Challenge, prints: Prints, sketch: Any, other: Mapping[str, Any], threshold: float
) -> tuple[str, float] | None:
    """The strongest evidence that ``other`` is a copy (and the similarity), or None."""
    kind = challenge.kind
    comparable = other["challenge__data_dir"] == challenge.data_dir
    other_sketch = sketch_from_bytes(kind, bytes(other["predictions_sketch"]))
    similarity = kind.copy_similarity(sketch, other_sketch) if comparable else 0.0
    if prints.weights and other["weights_fingerprint"] == prints.weights:
        return str(Evidence.SAME_WEIGHTS), similarity
    if not comparable or kind.copy_input_blind(other_sketch):
        return None
    if prints.predictions and other["predictions_fingerprint"] == prints.predictions:
        return str(Evidence.SAME_PREDICTIONS), similarity
    if similarity >= threshold:
        return str(Evidence.NEAR_PREDICTIONS), similarity
    return None


def _pair(
    submission: Submission, other: dict[str, Any], evidence: str, similarity: float
) -> CopyPair:
    """The pair with the earlier upload first."""
    mine = (submission.created_at, str(submission.pk))
    theirs = (other["created_at"], str(other["pk"]))
    first, second = (submission.pk, other["pk"]) if mine <= theirs else (other["pk"], submission.pk)
    return CopyPair(first_id=first, second_id=second, evidence=evidence, similarity=similarity)


def copy_pairs(challenge: Challenge) -> Any:
    """The pairs a challenge's copies page lists: at least one upload in this challenge,
    strongest evidence first, then the most similar; each with both uploads' students."""
    order = {value: index for index, value in enumerate(Evidence.values)}
    strength = Case(
        *(When(evidence=value, then=Value(index)) for value, index in order.items()),
        output_field=IntegerField(),
    )
    return (
        CopyPair.objects.filter(Q(first__challenge=challenge) | Q(second__challenge=challenge))
        .select_related(
            "first__enrollment__user",
            "first__challenge__semester",
            "second__enrollment__user",
            "second__challenge__semester",
        )
        .annotate(strength=strength)
        .order_by("strength", "-similarity", "first__created_at", "pk")
    )
