"""Each student's standing in a challenge, kept up to date as their submissions change.

A standing is what the ranking needs of one (enrolment, challenge): the submission that counts
under the challenge's scoring policy (``best``, ``last`` or ``selected``; among candidates the
higher score first, then the earlier upload, then the id), and the number of uploads that count.
This is the one place that decides which submission counts. It is kept twice: ranked by the
public part of the test set (the whole set without a split), which boards show before the
reveal, and by the private part (``final_*``), which they show after it; so the reveal, at the
deadline or by staff, needs no write. It is recomputed from that student's own submissions (a
handful of rows) whenever one of them changes:

* saved through the ORM (upload, seed, the admin) or deleted: the signals below;
* changed by a conditional ``UPDATE`` (finishing a grading, publishing a re-grade, selecting an
  upload): the service that does it calls ``standing_refresh`` in the same transaction;
* the challenge's rules changed (policy, split, threshold, ranked figure, in the admin): every
  standing of it, through ``challenge_rules_changed``.

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
from django.dispatch import Signal, receiver
from django.utils import timezone

from courses.models import Challenge
from submissions.models import Standing, Submission

FIELDS = (
    "best_id",
    "score",
    "passed",
    "headline",
    "best_created_at",
    "uploads",
    "final_best_id",
    "final_score",
    "final_public_score",
    "final_passed",
    "final_headline",
    "final_created_at",
)

#: sent after a student's standing in a challenge was recomputed (its counted result may have
#: changed; an upload that only adds to the count does not send it), inside the transaction that
#: changed it (``enrollment_id``, ``challenge_id``); apps above this one (LTI grade passback)
#: act on it once that commits
standing_changed = Signal()
#: sent when staff reveal a challenge's final results early or hide them again (``challenge``)
results_revealed = Signal()


@dataclass(frozen=True)
class Rules:
    """What of a challenge decides its standings (one query per challenge)."""

    scoring: str
    split: bool
    score_key: str
    threshold: float
    headline: list[str]
    kind: Any

    @classmethod
    def of(cls, challenge_id: int) -> Rules | None:
        challenge = Challenge.objects.filter(pk=challenge_id).first()
        return None if challenge is None else cls.for_challenge(challenge)

    @classmethod
    def for_challenge(cls, challenge: Challenge) -> Rules:
        kind = challenge.kind
        return cls(
            scoring=challenge.scoring,
            split=challenge.has_split,
            score_key=challenge.score_key,
            threshold=challenge.threshold,
            headline=[figure.key for figure in kind.figures if figure.headline],
            kind=kind,
        )


def part_metrics(metrics: Any, part: str) -> dict[str, Any] | None:
    """A split result's figures of one part ("public" or "private"), None without a split."""
    if not isinstance(metrics, dict):
        return None
    value = metrics.get(part)
    return value if isinstance(value, dict) else None


def number_or_none(value: Any) -> float | None:
    if isinstance(value, str) and value in ("Infinity", "-Infinity"):
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value):
        return float(value)
    return None


@dataclass(frozen=True)
class Phase:
    """One graded submission as a phase sees it: the score that ranks, pass, headline figures."""

    row: dict[str, Any]
    score: float | None
    passed: bool
    headline: dict[str, Any]


def _phase(row: dict[str, Any], part: str, rules: Rules) -> Phase:
    """``row`` scored by one part of the test set; without a split, by the whole set as stored
    (its ``passed`` too, which a re-grade may have set under an older threshold)."""
    metrics = row["metrics"] if isinstance(row["metrics"], dict) else {}
    figures = part_metrics(metrics, part) if rules.split else None
    if figures is None:
        return Phase(
            row,
            number_or_none(row["score"]),
            bool(row["passed"]),
            {key: metrics[key] for key in rules.headline if key in metrics},
        )
    score = number_or_none(figures.get(rules.score_key))
    return Phase(
        row,
        score,
        score is not None and rules.kind.passed(figures, rules.threshold, rules.score_key),
        {key: figures[key] for key in rules.headline if key in figures},
    )


def phase_of(row: dict[str, Any], part: str, rules: Rules) -> Phase:
    """A graded result (``metrics``, ``score``, ``passed``) as one phase scores it: what ranks
    a student's upload, for another result such as the reference model's."""
    return _phase(row, part, rules)


def _counted(rows: list[dict[str, Any]], part: str, rules: Rules) -> Phase | None:
    """The submission that counts under the challenge's scoring policy, ranked by ``part``."""
    phases = [p for p in (_phase(row, part, rules) for row in rows) if p.score is not None]
    if rules.scoring == Challenge.Scoring.LAST:
        # The latest graded upload counts, even when worse.
        phases = sorted(phases, key=lambda p: (p.row["created_at"], str(p.row["id"])))[-1:]
    elif rules.scoring == Challenge.Scoring.SELECTED:
        # The best of the marked ones; with none marked, the best of all.
        phases = [p for p in phases if p.row["selected"]] or phases
    if not phases:
        return None
    # Higher score first, then the earlier upload, then the id: the board's own order.
    return min(phases, key=lambda p: (-(p.score or 0.0), p.row["created_at"], str(p.row["id"])))


def standing_compute(
    enrollment_id: int, challenge_id: int, rules: Rules | None = None
) -> dict[str, Any]:
    """What the standing should be, from the student's submissions and the challenge's policy:
    two small queries (three without ``rules``).

    Before the reveal the public part of the test set ranks (the whole set without a split);
    after it the private part. Both are computed here, so a board switches at the deadline
    without a write.
    """
    rules = Rules.of(challenge_id) if rules is None else rules
    theirs = Submission.objects.filter(enrollment_id=enrollment_id, challenge_id=challenge_id)
    rows = [
        dict(row)
        for row in theirs.filter(
            status=Submission.Status.GRADED,
            # Excludes NULL and, on PostgreSQL, NaN too: there NaN sorts above +inf, so a NaN
            # score would otherwise be someone's best. SQLite stores NaN as NULL.
            score__lte=math.inf,
        ).values("id", "score", "passed", "created_at", "metrics", "selected")
    ]
    uploads = theirs.filter(counts_for_quota=True).count()
    empty = dict.fromkeys(FIELDS) | {
        "passed": False,
        "headline": {},
        "final_passed": False,
        "final_headline": {},
        "uploads": uploads,
    }
    if rules is None:
        return empty
    public = _counted(rows, "public", rules)
    final = _counted(rows, "private", rules)
    result = dict(empty)
    if public is not None:
        result |= {
            "best_id": public.row["id"],
            "score": public.score,
            "passed": public.passed,
            "headline": public.headline,
            "best_created_at": public.row["created_at"],
        }
    if final is not None:
        result |= {
            "final_best_id": final.row["id"],
            "final_score": final.score,
            "final_public_score": _phase(final.row, "public", rules).score,
            "final_passed": final.passed,
            "final_headline": final.headline,
            "final_created_at": final.row["created_at"],
        }
    return result


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
        Standing.objects.filter(**key).update(
            **standing_compute(enrollment_id, challenge_id), changed_at=timezone.now()
        )
        standing_changed.send(
            sender=Standing, enrollment_id=enrollment_id, challenge_id=challenge_id
        )


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
    rules = Rules.for_challenge(challenge)
    for enrollment_id in sorted(submitters | set(stored)):
        expected = standing_compute(enrollment_id, challenge.pk, rules)
        if stored.get(enrollment_id) != expected:
            drifts.append(Drift(enrollment_id, stored.get(enrollment_id), expected))
            if fix:
                standing_refresh(enrollment_id, challenge.pk)
    return drifts


# --- changes made through the ORM -------------------------------------------------------------


@receiver(post_save, sender=Submission, dispatch_uid="standing_on_save")
def _saved(
    sender: Any, instance: Submission, created: bool = False, raw: bool = False, **_: Any
) -> None:
    if raw:  # not while loading fixtures
        return
    if created and instance.status != Submission.Status.GRADED and standing_count_upload(instance):
        return
    standing_refresh(instance.enrollment_id, instance.challenge_id)


def standing_count_upload(submission: Submission) -> bool:
    """A new upload that is not graded yet changes only its student's upload count: add it to
    their standing with one ``UPDATE`` (an atomic increment, which waits for a refresh holding
    the row) instead of recomputing it, the one write an upload adds on a deadline night. Its
    counted result is unchanged, so ``standing_changed`` is not sent. False when the student
    has no standing yet (their first upload): then the whole standing is computed."""
    return bool(
        Standing.objects.filter(
            enrollment_id=submission.enrollment_id, challenge_id=submission.challenge_id
        ).update(uploads=F("uploads") + int(submission.counts_for_quota), changed_at=timezone.now())
    )


@receiver(post_delete, sender=Submission, dispatch_uid="standing_on_delete")
def _deleted(sender: Any, instance: Submission, **_: Any) -> None:
    standing_refresh(instance.enrollment_id, instance.challenge_id)


def challenge_rules_changed(challenge: Challenge) -> int:
    """After staff change a challenge's policy or threshold, or reveal its results: recompute
    its standings and move its boards' cache key on. Returns the standings that changed."""
    now = timezone.now()
    Challenge.objects.filter(pk=challenge.pk).update(policy_changed_at=now)
    challenge.policy_changed_at = now
    return len(standings_check(challenge, fix=True))


def challenge_reveal(challenge: Challenge, hide: bool = False) -> None:
    """ "Reveal final results": boards rank by the private part from now on, before the deadline
    or after it when results were held. ``hide`` undoes an early reveal. Standings keep both
    phases, so this only moves the boards' cache key on."""
    now = timezone.now()
    Challenge.objects.filter(pk=challenge.pk).update(
        revealed_at=None if hide else now, policy_changed_at=now
    )
    challenge.revealed_at = None if hide else now
    challenge.policy_changed_at = now
    results_revealed.send(sender=Challenge, challenge=challenge)
