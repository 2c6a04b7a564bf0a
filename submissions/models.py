"""Submission (one uploaded model), GradingRun (one attempt at grading it) and ApiToken."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext_lazy
from django.utils.translation import gettext_lazy as _

from courses.models import Challenge, Enrollment
from grader import formats


def format_choices() -> list[tuple[str, str]]:
    # A callable, so a format added to the grader needs no migration.
    return list(formats.FORMATS.items())


def submission_path(instance: Submission, filename: str) -> str:
    # Opaque: the student's file name never reaches the disk or a URL.
    del filename
    return f"submissions/{instance.pk}.bin"


class Submission(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Grading")
        GRADED = "graded", _("Graded")
        FAILED = "failed", _("Failed")

    PENDING = (Status.QUEUED, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    enrollment = models.ForeignKey(Enrollment, on_delete=models.PROTECT, related_name="submissions")
    challenge = models.ForeignKey(Challenge, on_delete=models.PROTECT, related_name="submissions")
    file = models.FileField(upload_to=submission_path, max_length=200)
    #: shown to the student only, to tell their uploads apart
    original_name = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    format = models.CharField(max_length=32, choices=format_choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    #: the ranking score (may be +inf: a perfect keypoint model); None until graded
    score = models.FloatField(null=True, blank=True)
    #: JSON-safe figures from the grader (infinity as the string "Infinity")
    metrics = models.JSONField(default=dict, blank=True)
    passed = models.BooleanField(null=True, blank=True)
    #: why it failed, written for the student
    error = models.TextField(blank=True)
    #: False once it failed for a platform reason: such uploads never use up the quota
    counts_for_quota = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    #: last time a grading message was sent; the sweep re-sends when this gets old
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: claims so far; a result is recorded only by the attempt that holds the latest claim
    attempts = models.PositiveSmallIntegerField(default=0)
    #: storage names of pictures the worker drew after grading: ``{"samples": "figures/..."}``
    pictures = models.JSONField(default=dict, blank=True)
    #: its last message could not be sent (broker down): the next sweep sends it at once
    unsent = models.BooleanField(default=False)
    #: marked by the student to count (a challenge scored by ``selected``)
    selected = models.BooleanField(default=False)
    # Finding copies (``submissions.copies``), staff only, from the result it holds: the
    # weights fingerprint the model process reported, and the prediction fingerprint and
    # sketch the trusted grader computed ("" while it has no graded result).
    weights_fingerprint = models.CharField(max_length=64, blank=True, default="")
    predictions_fingerprint = models.CharField(max_length=64, blank=True, default="")
    predictions_sketch = models.BinaryField(blank=True, default=b"")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The quota count and "my submissions": one student's uploads to a challenge, newest
            # first.
            models.Index(
                fields=["enrollment", "challenge", "-created_at"], name="sub_enrol_chal_created"
            ),
            # The leaderboard: graded submissions of one challenge by score.
            models.Index(fields=["challenge", "status", "-score"], name="sub_chal_status_score"),
            # The board's histogram cache key: the latest finish time of a challenge's graded
            # submissions (leaderboard.views.public.histogram_cache_key), read from the index.
            models.Index(
                fields=["challenge", "status", "finished_at"], name="sub_chal_status_finished"
            ),
            # The latest upload to a challenge and its latest finished grading, each one index
            # lookup (the board's cache key reads standing_changed instead since standings
            # carry the policies; these still serve per-challenge time queries).
            models.Index(fields=["challenge", "created_at"], name="sub_chal_created"),
            models.Index(fields=["challenge", "finished_at"], name="sub_chal_finished"),
            # The sweep: queued or running submissions whose message or worker went missing.
            models.Index(fields=["status", "queued_at"], name="sub_status_queued"),
            # Copies: the uploads with the same weights, or the same predictions, as one just
            # graded (``submissions.copies.copies_record``).
            models.Index(
                fields=["weights_fingerprint"],
                name="sub_weights_fingerprint",
                condition=~models.Q(weights_fingerprint=""),
            ),
            models.Index(
                fields=["predictions_fingerprint"],
                name="sub_predictions_fingerprint",
                condition=~models.Q(predictions_fingerprint=""),
            ),
            # The fair claim: a student's uploads running, and graded in the last hour.
            models.Index(fields=["enrollment", "status"], name="sub_enrol_status"),
            models.Index(fields=["enrollment", "finished_at"], name="sub_enrol_finished"),
        ]
        permissions = [("regrade_submission", "Can re-grade submissions")]

    def __str__(self) -> str:
        return f"{self.challenge.slug} by {self.enrollment.handle} ({self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status in self.PENDING


class RegradeBatchQuerySet(models.QuerySet["RegradeBatch"]):
    def with_progress(self) -> RegradeBatchQuerySet:
        """Annotated with ``done`` and ``failed`` attempts, in the same query."""
        not_done = [*GradingRun.PENDING, GradingRun.Outcome.CANCELLED]
        return self.annotate(
            done=models.Count("runs", filter=~models.Q(runs__outcome__in=not_done)),
            failed=models.Count("runs", filter=models.Q(runs__outcome__in=GradingRun.FAILURES)),
        )


class RegradeBatch(models.Model):
    """Staff re-grading many submissions of one challenge at once (``submissions.regrade``).

    Its attempts write only to their ``GradingRun``; the leaderboard keeps the old results until
    the last attempt finishes and the batch is published, all submissions in one transaction.
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        COMPLETE = "complete", _("Complete (not published)")
        PUBLISHED = "published", _("Published")
        CANCELLED = "cancelled", _("Cancelled")

    challenge = models.ForeignKey(
        Challenge, on_delete=models.PROTECT, related_name="regrade_batches"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.TextField()
    #: compute the new results and report them, never publish them
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    #: attempts in the batch, one per submission
    total = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: the challenge's rules when the batch started: publishing refuses if they have changed since
    threshold = models.FloatField(null=True, blank=True)
    score_key = models.CharField(max_length=32, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    #: for staff: why a complete batch was held back, or why it was cancelled
    note = models.TextField(blank=True)

    objects = RegradeBatchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "re-grade"

    def __str__(self) -> str:
        kind = "dry run" if self.dry_run else "re-grade"
        return f"{kind} of {self.challenge.slug} #{self.pk} ({self.status})"


class GradingRun(models.Model):
    class Outcome(models.TextChoices):
        #: a re-grade attempt not yet claimed by a worker
        QUEUED = "queued", _("Queued (re-grade)")
        RUNNING = "running", _("Running")
        GRADED = "graded", _("Graded")
        REJECTED = "rejected", _("Rejected (the model's fault)")
        PLATFORM_ERROR = "platform_error", _("Platform error (retried)")
        LOST = "lost", _("Lost (worker gone)")
        #: a re-grade attempt whose batch was cancelled before a worker took it
        CANCELLED = "cancelled", "Cancelled (re-grade)"

    #: outcomes of a re-grade attempt still to come, and of one that gave no new result
    PENDING = (Outcome.QUEUED, Outcome.RUNNING)
    FAILURES = (Outcome.REJECTED, Outcome.PLATFORM_ERROR, Outcome.LOST)

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="runs")
    attempt = models.PositiveSmallIntegerField()
    worker_host = models.CharField(max_length=200, blank=True)
    #: the worker process holding the claim (``WorkerHeartbeat.name``): when its heartbeat
    #: stops, the sweep (or a re-delivered message) takes the work over
    worker_name = models.CharField(max_length=200, blank=True, db_index=True)
    #: a re-grade attempt whose last message could not be sent: the next sweep sends it
    unsent = models.BooleanField(default=False)
    device = models.CharField(max_length=32, blank=True)
    torch_version = models.CharField(max_length=64, blank=True)
    grader_version = models.CharField(max_length=32, blank=True)
    runner = models.CharField(max_length=32, blank=True)
    dataset_hash = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    score = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    #: what the student was told, if anything
    error = models.TextField(blank=True)
    #: staff only: the model's stderr and internals may echo hidden test inputs
    log = models.TextField(blank=True)
    #: set for re-grade attempts: their outcome stays here until the batch is published
    batch = models.ForeignKey(
        RegradeBatch, on_delete=models.CASCADE, null=True, blank=True, related_name="runs"
    )
    #: re-grades: the new verdict, and the submission's score and verdict when the batch started
    passed = models.BooleanField(null=True, blank=True)
    previous_score = models.FloatField(null=True, blank=True)
    previous_passed = models.BooleanField(null=True, blank=True)
    #: what this attempt found for finding copies (``Submission.weights_fingerprint`` etc.): a
    #: re-grade's stay here until its batch is published
    weights_fingerprint = models.CharField(max_length=64, blank=True, default="")
    predictions_fingerprint = models.CharField(max_length=64, blank=True, default="")
    predictions_sketch = models.BinaryField(blank=True, default=b"")

    class Meta:
        ordering = ["started_at"]
        indexes = [
            # A batch's progress and "is this the last attempt?": its runs by outcome.
            models.Index(fields=["batch", "outcome"], name="run_batch_outcome"),
            # The estimate's throughput and the health page's compute per hour.
            models.Index(fields=["finished_at"], name="run_finished"),
            # The re-grade share: attempts started lately.
            models.Index(fields=["started_at"], name="run_started"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.attempt} of {self.submission_id}: {self.outcome}"

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class WorkerHeartbeat(models.Model):
    """One grading process that is (or was) alive, beaten every ``GRADER_HEARTBEAT_SECONDS``.

    A claim names the process holding it (``GradingRun.worker_name``); once this row's
    ``beat_at`` is older than ``GRADER_WORKER_DEAD_SECONDS`` the process is taken for dead and
    its work re-queued, in seconds instead of after the hard time limit.
    """

    #: ``<celery hostname>:<pid>``: one row per pool process, so a killed pool child is seen
    name = models.CharField(max_length=200, unique=True)
    host = models.CharField(max_length=200, blank=True)
    device = models.CharField(max_length=32, blank=True)
    runner = models.CharField(max_length=32, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    beat_at = models.DateTimeField(default=timezone.now, db_index=True)
    #: what it grades now: ``"submission <uuid>"`` or ``"re-grade run <id>"``, or blank
    current_job = models.CharField(max_length=80, blank=True)
    #: set when the process stopped cleanly: it is gone, not dead
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class HealthAlert(models.Model):
    """An incident site admins were told about: open until it recovers, so each incident sends
    one email when it starts and one when it ends, however often the sweep looks."""

    class Kind(models.TextChoices):
        QUEUE_AGE = "queue_age", "Queue too old"
        NO_WORKER = "no_worker", "No worker alive"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    opened_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    #: what was seen when it opened, for the email and the admin
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # One open incident per kind: of two sweeps, only one opens it (and emails).
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(resolved_at__isnull=True),
                name="healthalert_one_open_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} since {self.opened_at:%Y-%m-%d %H:%M}"


def new_token_key() -> str:
    return secrets.token_urlsafe(32)


#: how many leading characters of a token are kept in clear, so a student can tell tokens apart
TOKEN_PREFIX_LENGTH = 8


def token_digest(key: str) -> str:
    """What is stored of a token, and how a presented token is looked up.

    One unsalted SHA-256, not a slow salted password hash: a token is 256 random bits, so there
    is nothing to guess by brute force and a salt would only stop the lookup by digest (one
    indexed query per request rather than a hash check per stored token). A leaked table or
    backup holds no token that works.
    """
    return hashlib.sha256(key.encode()).hexdigest()


def password_fingerprint(password_hash: str) -> str:
    """Binds a token to the password its user had when it was made, like Django's
    ``get_session_auth_hash`` binds a session: any new password (the change and reset pages,
    the admin, ``set_password`` in a shell) changes the stored hash, and the token stops
    working. Derived from the stored hash only, and without ``SECRET_KEY``, so rotating the
    key does not revoke every token; it is compared, never used as a credential."""
    return hashlib.sha256(f"api-token-password:{password_hash}".encode()).hexdigest()


class ApiToken(models.Model):
    """One token per user for scripts and notebooks: ``Authorization: Token <key>``.

    Only the key's digest is stored (``token_digest``); the key itself is shown once, in the
    answer that made it. Making a new one replaces the old. A token stops working when its user's
    password changes (``password_fingerprint``) and then says so, until a new one is made.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_token"
    )
    #: SHA-256 of the key, in hex: a request's token is looked up by its digest
    digest = models.CharField(max_length=64, unique=True)
    #: the key's first characters, not enough to use it, shown so a student knows which it is
    prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH)
    #: ``password_fingerprint`` of the user's password hash when the token was made
    password_fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token {self.prefix}… of {self.user}"

    @classmethod
    def issue(cls, user: Any) -> str:
        """Make ``user`` a new token, replacing any old one, and return its key: the only time
        the key exists outside the caller's hands."""
        key = new_token_key()
        # The password as stored, not as this (possibly stale) user object holds it: the
        # token is checked against the stored one.
        stored = get_user_model().objects.values_list("password", flat=True).get(pk=user.pk)
        cls.objects.update_or_create(
            user=user,
            defaults={
                "digest": token_digest(key),
                "prefix": key[:TOKEN_PREFIX_LENGTH],
                "password_fingerprint": password_fingerprint(stored),
                "created_at": timezone.now(),
                "last_used_at": None,
            },
        )
        return key

    @classmethod
    def find(cls, key: str) -> ApiToken | None:
        """The token with this key, with its user, whether it still works or not."""
        return cls.objects.select_related("user").filter(digest=token_digest(key)).first()

    def revoked(self) -> bool:
        """True once the user's password changed after the token was made."""
        current = password_fingerprint(self.user.password)
        return not constant_time_compare(self.password_fingerprint, current)


class Standing(models.Model):
    """A student's standing in a challenge: their best rankable submission and upload count.

    Maintained by ``submissions.standings`` whenever one of their submissions changes, so a
    leaderboard reads one row per student instead of ranking every upload.
    """

    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="+")
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="+")
    #: the best graded submission with a real score (None: nothing rankable yet)
    best = models.ForeignKey(
        Submission, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    score = models.FloatField(null=True, blank=True)
    passed = models.BooleanField(default=False)
    #: the best submission's headline figures beside its score (keypoints: its MSE), as stored
    #: in its metrics (``TaskKind.figures`` with ``headline``)
    headline = models.JSONField(default=dict, blank=True)
    best_created_at = models.DateTimeField(null=True, blank=True)
    #: uploads that count (not those that failed for a platform reason)
    uploads = models.PositiveIntegerField(default=0)
    # The standing after the reveal (``submissions.policies.results_revealed``): the submission
    # that counts ranked by its private score. Equal to the fields above for a challenge without
    # a split scored by its best or last upload. Both are kept so a board switches phase
    # without rewriting a row.
    final_best = models.ForeignKey(
        Submission, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    final_score = models.FloatField(null=True, blank=True)
    #: the public score of ``final_best``, shown beside its private one
    final_public_score = models.FloatField(null=True, blank=True)
    final_passed = models.BooleanField(default=False)
    final_headline = models.JSONField(default=dict, blank=True)
    final_created_at = models.DateTimeField(null=True, blank=True)
    #: when the row was last recomputed: the board's cache key (``leaderboard.boards``)
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "challenge"], name="standing_unique_per_challenge"
            )
        ]
        indexes = [
            # The board: a challenge's students best first, in the ranking's own order.
            models.Index(
                fields=["challenge", "-score", "best_created_at", "best"], name="standing_board"
            ),
            # The board after the reveal, in its own order.
            models.Index(
                fields=["challenge", "-final_score", "final_created_at", "final_best"],
                name="standing_final_board",
            ),
            # The board's cache key: the latest change to a challenge's standings.
            models.Index(fields=["challenge", "changed_at"], name="standing_changed"),
        ]

    def __str__(self) -> str:
        return f"{self.enrollment_id} in {self.challenge_id}: {self.score}"


class CopyBucket(models.Model):
    """One band of a graded submission's prediction sketch (``grader.fingerprints.band_keys``):
    submissions sharing a key are the candidates for ``near_predictions``."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=32)

    class Meta:
        indexes = [
            # The candidates of a submission just graded: every submission with one of its keys.
            models.Index(fields=["key"], name="copybucket_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} of {self.submission_id}"


class CopyPair(models.Model):
    """Two graded uploads of different students, in one challenge or the same challenge of
    another semester, that look copied (``submissions.copies``). Staff only."""

    class Evidence(models.TextChoices):
        # Strongest first: a pair is recorded with the strongest evidence found.
        SAME_WEIGHTS = "same_weights", gettext_lazy("Same weights")
        SAME_PREDICTIONS = "same_predictions", gettext_lazy("Same predictions")
        NEAR_PREDICTIONS = "near_predictions", gettext_lazy("Near-identical predictions")

    #: the upload made first, and the later one
    first = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="+")
    evidence = models.CharField(max_length=24, choices=Evidence.choices)
    #: how alike their predictions are, from 0 to 1 (``TaskKind.copy_similarity``)
    similarity = models.FloatField()
    found_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["first__created_at"]
        constraints = [
            models.UniqueConstraint(fields=["first", "second"], name="copypair_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.first_id} ~ {self.second_id}: {self.evidence}"
