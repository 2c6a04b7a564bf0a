from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from submissions.models import ApiToken, GradingRun, Submission
from submissions.services import submission_regrade

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
    actions = ["regrade"]

    @admin.display(ordering="enrollment__handle")
    def handle(self, obj: Submission) -> str:
        return obj.enrollment.handle

    @admin.display(ordering="enrollment__user__username")
    def username(self, obj: Submission) -> str:
        return obj.enrollment.user.get_username()

    @admin.action(description="Re-grade selected submissions", permissions=["change"])
    def regrade(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        queued = sum(submission_regrade(s) for s in queryset.select_related("challenge"))
        self.message_user(request, f"{queued} submission(s) queued for grading again.")


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


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "created_at", "last_used_at"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    fields = ["user", "created_at", "last_used_at"]
    readonly_fields = ["created_at", "last_used_at"]
    raw_id_fields = ["user"]
