"""Submissions, their grading runs and API tokens in the admin."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from leaderboard.admin.regrades import Selection, has_regrade_permission, regrade_confirm
from leaderboard.admin.scope import ScopedAdmin, ScopedInline, SiteWideAdmin
from submissions.compute import with_grading_seconds
from submissions.models import ApiToken, GradingRun, Submission

RUN_FIELDS = (
    "attempt",
    "batch",
    "outcome",
    "score",
    "passed",
    "started_at",
    "finished_at",
    "worker_host",
    "device",
    "torch_version",
    "grader_version",
    "runner",
    "dataset_hash",
    "error_code",
    "log",
)


class GradingRunInline(ScopedInline):
    model = GradingRun
    extra = 0
    can_delete = False
    fields = RUN_FIELDS
    readonly_fields = RUN_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Submission | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[GradingRun]:
        # Each re-grade attempt names its batch, and the batch its challenge: one query.
        return super().get_queryset(request).select_related("batch__challenge")


@admin.register(Submission)
class SubmissionAdmin(ScopedAdmin):
    list_display = [
        "id",
        "handle",
        "username",
        "challenge",
        "status",
        "score",
        "passed",
        "created_at",
        "attempts",
        "grading_seconds",
    ]
    list_filter = ["status", "passed", "challenge__semester", "challenge", "counts_for_quota"]
    list_select_related = ["enrollment__user", "challenge"]
    search_fields = ["id", "enrollment__handle", "enrollment__user__username", "sha256"]
    date_hierarchy = "created_at"
    inlines = [GradingRunInline]
    # The status changes only through submissions.lifecycle (which refreshes the standing and
    # knows which attempt holds the claim), never by hand: a re-grade is the way to change it.
    readonly_fields = [
        "id",
        "status",
        "enrollment",
        "challenge",
        "file",
        "original_name",
        "sha256",
        "size",
        "format",
        "created_at",
        "queued_at",
        "started_at",
        "finished_at",
        # What the grader found for finding copies (submissions.copies): a record, not a field
        # to edit.
        "weights_fingerprint",
        "predictions_fingerprint",
        "attempts",
        "metrics",
    ]
    actions = ["regrade_selected"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Submission]:
        return with_grading_seconds(super().get_queryset(request))

    @admin.display(ordering="enrollment__handle")
    def handle(self, obj: Submission) -> str:
        return obj.enrollment.handle

    @admin.display(description=_("grading seconds"), ordering="grading_time")
    def grading_seconds(self, obj: Submission) -> str:
        """Every attempt's seconds, from its claim to its recorded outcome."""
        took = getattr(obj, "grading_time", None)
        return "—" if took is None else f"{took.total_seconds():.1f}"

    @admin.display(ordering="enrollment__user__username")
    def username(self, obj: Submission) -> str:
        return obj.enrollment.user.get_username()

    def has_regrade_permission(self, request: HttpRequest) -> bool:
        return has_regrade_permission(request)

    @admin.action(description="Re-grade selected submissions", permissions=["regrade"])
    def regrade_selected(
        self, request: HttpRequest, queryset: QuerySet[Submission]
    ) -> HttpResponse | None:
        by_challenge: Selection = {}
        for submission in queryset.select_related("challenge__semester__course"):
            chosen = by_challenge.setdefault(submission.challenge, [])
            assert chosen is not None
            chosen.append(submission)
        return regrade_confirm(self, request, by_challenge)


@admin.register(GradingRun)
class GradingRunAdmin(ScopedAdmin):
    list_display = [
        "submission",
        "attempt",
        "outcome",
        "worker_host",
        "device",
        "runner",
        "started_at",
        "finished_at",
    ]
    list_filter = ["outcome", "device", "runner", "submission__challenge"]
    list_select_related = ["submission__challenge", "submission__enrollment"]
    search_fields = ["submission__id", "submission__enrollment__handle", "worker_host"]
    raw_id_fields = ["submission"]
    # A run's outcome is the record of what happened: it changes only through
    # submissions.lifecycle, never by hand.
    readonly_fields = ["outcome", "weights_fingerprint", "predictions_fingerprint"]


@admin.register(ApiToken)
class ApiTokenAdmin(SiteWideAdmin):
    """Tokens to look at and delete (revoke); only their owner makes one, on the profile page,
    since the key is shown once, to whoever made it."""

    site_wide_because = "a token belongs to an account, which spans semesters"

    list_display = ["user", "prefix", "created_at", "last_used_at", "works"]
    list_select_related = ["user"]
    search_fields = ["user__username", "prefix"]
    fields = ["user", "prefix", "created_at", "last_used_at", "works"]
    readonly_fields = ["user", "prefix", "created_at", "last_used_at", "works"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(boolean=True, description="works")
    def works(self, token: ApiToken) -> bool:
        # False: its user's password changed after it was made.
        return token.user.is_active and not token.revoked()
