"""Course, Semester, Challenge and Enrollment: who may submit what, until when, and as whom."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy

from grader import formats
from grader.kinds import TaskKind, get_kind, kind_names
from grader.limits import MB


def task_choices() -> list[tuple[str, str]]:
    return [(name, get_kind(name).title) for name in kind_names()]


def default_formats() -> list[str]:
    return list(formats.DEFAULT_FORMATS)


def validate_timezone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(f"{value!r} is not an IANA timezone such as Europe/Berlin")


def validate_formats(value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("list at least one format")
    unknown = [f for f in value if f not in formats.FORMATS]
    if unknown:
        raise ValidationError(
            f"unknown format(s) {', '.join(map(str, unknown))}; known: {', '.join(formats.FORMATS)}"
        )


def validate_data_dir(value: str) -> None:
    # Relative to GRADER_DATA_ROOT and never above it.
    if value.startswith("/") or ".." in value.split("/"):
        raise ValidationError("a folder relative to GRADER_DATA_ROOT, without '..'")


class Course(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    #: deadlines are wall-clock times here; everything is stored in UTC
    timezone = models.CharField(
        max_length=64, default="Europe/Berlin", validators=[validate_timezone]
    )

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    @property
    def tzinfo(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")


class SemesterManager(models.Manager["Semester"]):
    def get_queryset(self) -> models.QuerySet[Semester]:
        # A semester is named with its course ("I2DL · Winter 2026/27"): fetch them together,
        # so choice lists (admin filters, forms) do not query once per semester.
        return super().get_queryset().select_related("course")


class Semester(models.Model):
    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="semesters")
    slug = models.SlugField(help_text="e.g. ws2025; unique within the course")
    title = models.CharField(max_length=100, help_text="e.g. Winter 2025/26")
    #: orders semesters: newest first
    starts_on = models.DateField()
    #: no uploads at all once closed, whatever the deadlines say
    closed = models.BooleanField(default=False)
    #: when it was closed; its boards say "final results" from then on
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_current = models.BooleanField(default=False)
    #: whole days each student may spend past deadlines, across the semester's challenges
    late_days = models.PositiveSmallIntegerField(
        default=0,
        help_text="days each student may upload past deadlines, in total over the semester",
    )

    objects = SemesterManager()

    class Meta:
        ordering = ["course", "-starts_on"]
        constraints = [
            models.UniqueConstraint(fields=["course", "slug"], name="semester_slug_per_course"),
            models.UniqueConstraint(
                fields=["course"], condition=Q(is_current=True), name="one_current_semester"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.course} · {self.title}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Ticking "closed" in a form records when; the admin actions set both in one UPDATE.
        if self.closed and self.closed_at is None:
            self.closed_at = timezone.now()
        elif not self.closed:
            self.closed_at = None
        super().save(*args, **kwargs)


def reference_path(instance: Challenge, filename: str) -> str:
    # Opaque, like uploads: a file name never reaches the disk.
    del filename
    return f"reference/{secrets.token_hex(16)}.bin"


def validate_fraction(value: float) -> None:
    if not 0 <= value < 1:
        raise ValidationError("a fraction from 0 (no private part) up to, not including, 1")


class Challenge(models.Model):
    class Device(models.TextChoices):
        # What grading needs, not where it runs: a GPU worker also takes CPU challenges' jobs.
        CPU = "cpu", "CPU"
        GPU = "gpu", "GPU"

    class Scoring(models.TextChoices):
        BEST = "best", "Best graded upload"
        LAST = "last", "Latest graded upload"
        SELECTED = "selected", "Best of the uploads the student selects"

    semester = models.ForeignKey(Semester, on_delete=models.PROTECT, related_name="challenges")
    task = models.CharField(max_length=32, choices=task_choices)
    #: unique across courses and semesters: the API addresses a challenge by slug alone
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    #: an upload counts if it finished strictly before this instant
    deadline = models.DateTimeField()
    threshold = models.FloatField(help_text="pass when the score is at least this")
    allowed_formats = models.JSONField(default=default_formats, validators=[validate_formats])
    max_params = models.PositiveIntegerField(default=5_000_000)
    max_file_mb = models.PositiveIntegerField(default=50)
    #: uploads per rolling 24 hours; uploads that failed for a platform reason do not count
    daily_quota = models.PositiveSmallIntegerField(default=5)
    memory_mb = models.PositiveIntegerField(default=4096)
    time_limit_seconds = models.PositiveIntegerField(
        default=300, help_text="wall clock for loading the model and predicting every image"
    )
    data_dir = models.CharField(
        max_length=255,
        validators=[validate_data_dir],
        help_text="hidden test set, relative to GRADER_DATA_ROOT on the workers",
    )
    #: the queue its jobs go to: only workers with a GPU serve ``gpu``
    device = models.CharField(
        max_length=8,
        choices=Device.choices,
        default=Device.CPU,
        help_text="GPU: graded only by workers with a GPU (GRADER_DEVICE=cuda:N)",
    )
    #: the metric that ranks and passes, if not the kind's default (one of its ranked_options)
    ranked_by = models.CharField(
        max_length=32,
        blank=True,
        help_text="the figure that ranks and passes; empty: the kind's usual score",
    )
    # --- course policies (docs/staff.md, "Course policies") ---
    scoring = models.CharField(
        max_length=16,
        choices=Scoring.choices,
        default=Scoring.BEST,
        help_text="which of a student's graded uploads counts",
    )
    max_selected = models.PositiveSmallIntegerField(
        default=2, help_text="how many uploads a student may select (scoring: selected)"
    )
    public_fraction = models.FloatField(
        default=0.0,
        validators=[validate_fraction],
        help_text="share of the hidden test set scored publicly before the deadline; the rest"
        " ranks after it (0: no split)",
    )
    #: keep private scores hidden after the deadline until staff reveal them
    hold_results = models.BooleanField(
        default=False,
        help_text="keep ranking by the public score after the deadline until results are revealed",
    )
    #: when staff pressed "Reveal final results" (before the deadline, or after it when held)
    revealed_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: days of the semester's late-day budget one student may spend here (empty: no cap)
    late_days_allowed = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="cap on late days a student may spend on this challenge; empty: no cap",
    )
    #: when the rules that decide the standings last changed: part of the board's cache key
    policy_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: staff's own model, graded on the hidden data before the challenge opens
    reference_model = models.FileField(
        upload_to=reference_path,
        max_length=200,
        blank=True,
        help_text="a model the staff expect to pass; graded by a worker on the hidden data",
    )
    #: the last check of the reference model (``submissions.reference``): status, score, passed,
    #: error, when, and the rules and dataset hash it ran under
    reference_check = models.JSONField(default=dict, blank=True, editable=False)
    #: show the reference model on the board as an unranked "Course baseline" row once it
    #: passed its check
    show_baseline = models.BooleanField(
        gettext_lazy("show baseline"),
        default=True,
        help_text=gettext_lazy(
            "show the reference model on the board as an unranked row once it passed its check"
        ),
    )

    class Meta:
        ordering = ["deadline", "title"]
        permissions = [
            ("view_gradebook", "Can see grade books, pass lists and staff reports of every course")
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def kind(self) -> TaskKind:
        return get_kind(self.task)

    @property
    def score_key(self) -> str:
        """The metric that ranks and passes: ``ranked_by``, else the kind's default."""
        return self.ranked_by or self.kind.score_key

    def clean(self) -> None:
        super().clean()
        if self.task and self.ranked_by:
            options = get_kind(self.task).ranked_options
            if self.ranked_by not in options:
                choices = ", ".join(f"{key} ({what})" for key, what in options.items())
                raise ValidationError(
                    {"ranked_by": f"{self.kind.title} ranks by one of: {choices}"}
                )

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mb * MB

    @property
    def course(self) -> Course:
        return self.semester.course

    def deadline_passed(self, at: datetime | None = None) -> bool:
        return (at or timezone.now()) >= self.deadline

    def is_open(self, at: datetime | None = None) -> bool:
        return not self.semester.closed and not self.deadline_passed(at)

    def grading_rules(self) -> dict[str, Any]:
        """What a grading depends on besides the model and the data: a reference check run
        under other rules is out of date."""
        return {
            "threshold": self.threshold,
            "score_key": self.score_key,
            "public_fraction": self.public_fraction,
            "allowed_formats": list(self.allowed_formats),
            "max_params": self.max_params,
            "max_file_mb": self.max_file_mb,
            "memory_mb": self.memory_mb,
            "time_limit_seconds": self.time_limit_seconds,
            "data_dir": self.data_dir,
        }

    @property
    def has_split(self) -> bool:
        return self.public_fraction > 0

    def data_path(self) -> str:
        return str(settings.GRADER_DATA_ROOT / self.data_dir)

    @classmethod
    def defaults_for(cls, task: str) -> dict[str, Any]:
        """Field values the task kind suggests (threshold and limits of the course)."""
        kind = get_kind(task)
        return {
            "threshold": kind.default_threshold,
            "max_params": kind.default_max_params,
            "max_file_mb": kind.default_max_file_mb,
        }


class Enrollment(models.Model):
    class Role(models.TextChoices):
        STUDENT = "student", "Student"
        TA = "ta", "Teaching assistant"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments"
    )
    semester = models.ForeignKey(Semester, on_delete=models.PROTECT, related_name="enrollments")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STUDENT)
    #: the pseudonym on public leaderboards: random, stable, never derived from the username
    handle = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["semester", "handle"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "semester"], name="one_enrollment_per_semester"
            ),
            models.UniqueConstraint(
                fields=["semester", "handle"], name="handle_unique_per_semester"
            ),
        ]
        indexes = [
            # A board's counts: the students of a semester and its few teaching assistants
            # (``leaderboard.board_pages``), counted without reading the rows.
            models.Index(fields=["semester", "role"], name="enrollment_semester_role"),
        ]

    def __str__(self) -> str:
        return f"{self.handle} ({self.semester})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.handle:
            self.handle = self._free_handle()
        super().save(*args, **kwargs)

    @property
    def is_ta(self) -> bool:
        return self.role == self.Role.TA

    def _free_handle(self) -> str:
        # Four digits while the semester has room, then six. Drawn at random so a handle says
        # nothing about the student; the unique constraint turns the rare race between two
        # enrolments into an error instead of a shared handle.
        taken = set(
            Enrollment.objects.filter(semester_id=self.semester_id).values_list("handle", flat=True)
        )
        digits = 4 if len(taken) < 4000 else 6
        while True:
            handle = f"u{secrets.randbelow(9 * 10 ** (digits - 1)) + 10 ** (digits - 1)}"
            if handle not in taken:
                return handle


class Extension(models.Model):
    """A later deadline (and more uploads a day until it) for one student in one challenge."""

    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="extensions")
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="extensions")
    deadline = models.DateTimeField(help_text="this student's own deadline")
    extra_uploads = models.PositiveSmallIntegerField(
        default=0, help_text="added to the daily quota until this deadline"
    )
    #: staff only: never shown to the student or anyone else
    reason = models.TextField(blank=True, help_text="staff only")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["challenge", "enrollment"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "challenge"], name="one_extension_per_challenge"
            )
        ]

    def __str__(self) -> str:
        return f"{self.enrollment.handle}: {self.challenge.slug} until {self.deadline}"

    def clean(self) -> None:
        super().clean()
        if (
            self.enrollment_id
            and self.challenge_id
            and self.enrollment.semester_id != self.challenge.semester_id
        ):
            raise ValidationError("the student is not enrolled in the challenge's semester")
