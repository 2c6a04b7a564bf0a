"""Each student's standing in a challenge, kept up to date as their submissions change.

A standing is what the ranking needs of one (enrolment, challenge): the best graded submission
with a real score (higher score first, then the earlier upload, then the id) and the number of
uploads that count. It is recomputed from that student's own submissions (a handful of rows)
whenever one of them changes:

* saved through the ORM (upload, seed, the admin) or deleted: the signals below;
* changed by a conditional ``UPDATE`` (finishing a grading, publishing a re-grade): the service
  that does it calls ``standing_refresh`` in the same transaction.

The standing row is locked while it is recomputed, so two results of one student recorded at
once (two workers) never leave it stale: the second waits and then sees the first.
``standings_check`` recomputes every standing of a challenge and reports the ones that differ
(``manage.py standings --check``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from courses.models import Challenge
from submissions.models import Standing, Submission

FIELDS = ("best_id", "score", "passed", "headline", "best_created_at", "uploads")


def headline_keys(challenge_id: int) -> list[str]:
    """The metrics a board shows beside the score, from the challenge's kind."""
    task = Challenge.objects.filter(pk=challenge_id).values_list("task", flat=True).first()
    if task is None:
        return []
    return [figure.key for figure in Challenge(task=task).kind.figures if figure.headline]


def standing_compute(
    enrollment_id: int, challenge_id: int, keys: list[str] | None = None
) -> dict[str, Any]:
    """What the standing should be, from the student's submissions: two small queries (three
    without ``keys``, the challenge's headline figures)."""
    keys = headline_keys(challenge_id) if keys is None else keys
    theirs = Submission.objects.filter(enrollment_id=enrollment_id, challenge_id=challenge_id)
    best = (
        theirs.filter(
            status=Submission.Status.GRADED,
            # Excludes NULL and, on PostgreSQL, NaN too: there NaN sorts above +inf, so a NaN
            # score would otherwise be someone's best. SQLite stores NaN as NULL.
            score__lte=math.inf,
        )
        .order_by(F("score").desc(), "created_at", "id")
        .values("id", "score", "passed", "created_at", "metrics")
        .first()
    )
    uploads = theirs.filter(counts_for_quota=True).count()
    if best is None:
        return dict.fromkeys(FIELDS) | {"passed": False, "headline": {}, "uploads": uploads}
    metrics = best["metrics"] if isinstance(best["metrics"], dict) else {}
    return {
        "best_id": best["id"],
        "score": best["score"],
        "passed": bool(best["passed"]),
        "headline": {key: metrics[key] for key in keys if key in metrics},
        "best_created_at": best["created_at"],
        "uploads": uploads,
    }


def standing_refresh(enrollment_id: int, challenge_id: int) -> None:
    """Recompute one student's standing; call it in the transaction that changed them."""
    with transaction.atomic():
        Standing.objects.bulk_create(
            [Standing(enrollment_id=enrollment_id, challenge_id=challenge_id)],
            ignore_conflicts=True,
        )
        key = {"enrollment_id": enrollment_id, "challenge_id": challenge_id}
        # Lock first, then read the submissions: a concurrent refresh of the same student waits
        # here and, once this commits, reads what this one wrote.
        list(Standing.objects.select_for_update().filter(**key).values_list("pk"))
        Standing.objects.filter(**key).update(**standing_compute(enrollment_id, challenge_id))


def standings_refresh(pairs: Iterable[tuple[int, int]]) -> None:
    for enrollment_id, challenge_id in sorted(set(pairs)):
        standing_refresh(enrollment_id, challenge_id)


@dataclass(frozen=True)
class Drift:
    enrollment_id: int
    stored: dict[str, Any] | None
    expected: dict[str, Any]


def standings_check(challenge: Challenge, *, fix: bool = False) -> list[Drift]:
    """Every standing of ``challenge`` that differs from its submissions (fixed if ``fix``)."""
    stored = {
        row["enrollment_id"]: {k: row[k] for k in FIELDS}
        for row in Standing.objects.filter(challenge=challenge).values("enrollment_id", *FIELDS)
    }
    submitters = set(
        Submission.objects.filter(challenge=challenge)
        .values_list("enrollment_id", flat=True)
        .distinct()
    )
    drifts = []
    keys = headline_keys(challenge.pk)
    for enrollment_id in sorted(submitters | set(stored)):
        expected = standing_compute(enrollment_id, challenge.pk, keys)
        if stored.get(enrollment_id) != expected:
            drifts.append(Drift(enrollment_id, stored.get(enrollment_id), expected))
            if fix:
                standing_refresh(enrollment_id, challenge.pk)
    return drifts


# --- changes made through the ORM -------------------------------------------------------------


@receiver(post_save, sender=Submission, dispatch_uid="standing_on_save")
def _saved(sender: Any, instance: Submission, raw: bool = False, **_: Any) -> None:
    if not raw:  # not while loading fixtures
        standing_refresh(instance.enrollment_id, instance.challenge_id)


@receiver(post_delete, sender=Submission, dispatch_uid="standing_on_delete")
def _deleted(sender: Any, instance: Submission, **_: Any) -> None:
    standing_refresh(instance.enrollment_id, instance.challenge_id)
