from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from leaderboard.models import Challenge
from submissions.models import ApiToken, GradingRun, RegradeBatch, Submission
from submissions.regrade import PENDING_RUNS, RegradeRefused, regrade_batch_start


def has_regrade_permission(request: HttpRequest) -> bool:
    return request.user.has_perm("submissions.regrade_submission")


def regrade_batches_start(
    request: HttpRequest, challenges: dict[Challenge, list[Submission] | None], reason: str
) -> tuple[int, list[str]]:
    """Start one batch per challenge for the admin actions: (attempts queued, refusals)."""
    queued, refusals = 0, []
    for challenge, chosen in challenges.items():
        try:
            batch = regrade_batch_start(challenge, request.user, reason, submissions=chosen)
        except RegradeRefused as exc:
            refusals.append(str(exc))
        else:
            queued += batch.total
    return queued, refusals


RUN_FIELDS = (
    "attempt",
    "outcome",
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


class GradingRunInline(admin.TabularInline):
    model = GradingRun
    extra = 0
    can_delete = False
    fields = RUN_FIELDS
    readonly_fields = RUN_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Submission | None = None) -> bool:
        return False


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
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
    ]
    list_filter = ["status", "passed", "challenge__semester", "challenge", "counts_for_quota"]
    list_select_related = ["enrollment__user", "challenge"]
    search_fields = ["id", "enrollment__handle", "enrollment__user__username", "sha256"]
    date_hierarchy = "created_at"
    inlines = [GradingRunInline]
    readonly_fields = [
        "id",
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
        "attempts",
        "metrics",
    ]
    actions = ["regrade_selected"]

    @admin.display(ordering="enrollment__handle")
    def handle(self, obj: Submission) -> str:
        return obj.enrollment.handle

    @admin.display(ordering="enrollment__user__username")
    def username(self, obj: Submission) -> str:
        return obj.enrollment.user.get_username()

    def has_regrade_permission(self, request: HttpRequest) -> bool:
        return has_regrade_permission(request)

    @admin.action(description="Re-grade selected submissions", permissions=["regrade"])
    def regrade_selected(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        by_challenge: dict[Challenge, list[Submission] | None] = {}
        for submission in queryset.select_related("challenge__semester"):
            chosen = by_challenge.setdefault(submission.challenge, [])
            assert chosen is not None
            chosen.append(submission)
        queued, refusals = regrade_batches_start(request, by_challenge, "admin: re-grade selected")
        self.message_user(request, f"{queued} submission(s) queued for re-grading.")
        for refusal in refusals:
            self.message_user(request, refusal, messages.ERROR)


@admin.register(GradingRun)
class GradingRunAdmin(admin.ModelAdmin):
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


BATCH_FIELDS = (
    "challenge",
    "created_by",
    "reason",
    "dry_run",
    "status",
    "total",
    "created_at",
    "finished_at",
    "progress",
    "report",
)


@admin.register(RegradeBatch)
class RegradeBatchAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "challenge",
        "status",
        "dry_run",
        "progress",
        "created_by",
        "created_at",
        "report",
    ]
    list_filter = ["status", "dry_run", "challenge"]
    list_select_related = ["challenge", "created_by"]
    fields = readonly_fields = BATCH_FIELDS

    def get_queryset(self, request: HttpRequest) -> QuerySet[RegradeBatch]:
        # Progress in the page's one query, not one per row.
        return (
            super()
            .get_queryset(request)
            .annotate(
                done=Count("runs", filter=~Q(runs__outcome__in=PENDING_RUNS)),
                failed=Count(
                    "runs",
                    filter=Q(
                        runs__outcome__in=[
                            GradingRun.Outcome.REJECTED,
                            GradingRun.Outcome.PLATFORM_ERROR,
                        ]
                    ),
                ),
            )
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="progress")
    def progress(self, obj: RegradeBatch) -> str:
        done, failed = getattr(obj, "done", 0), getattr(obj, "failed", 0)
        return f"{done} of {obj.total} graded, {failed} failure(s)"

    @admin.display(description="report")
    def report(self, obj: RegradeBatch) -> str:
        return format_html('<a href="{}">changes</a>', reverse("regrade_report", args=[obj.pk]))


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "created_at", "last_used_at"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    fields = ["user", "created_at", "last_used_at"]
    readonly_fields = ["created_at", "last_used_at"]
    raw_id_fields = ["user"]
