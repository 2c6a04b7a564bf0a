"""Courses, semesters, challenges and enrolments in the admin."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from accounts.invitations import invitations_send
from courses.access import sees_every_gradebook
from courses.models import Challenge, Course, Enrollment, Extension, Semester
from courses.roster import roster_import
from courses.services import semesters_close, semesters_reopen
from leaderboard.admin.regrades import has_regrade_permission, recent_batches, regrade_confirm
from leaderboard.admin.reveal import reveal_confirm
from leaderboard.admin.scope import ScopedAdmin, ScopedInline, rows_in_scope
from submissions.models import RegradeBatch
from submissions.reference import reference_check_start, reference_warnings
from submissions.standings import challenge_reveal, challenge_rules_changed

#: the fields that decide standings: a change recomputes them (``challenge_rules_changed``)
RULES = {"scoring", "max_selected", "public_fraction", "threshold", "ranked_by"}


class ExtensionInline(ScopedInline):
    model = Extension
    extra = 0
    fields = ["enrollment", "challenge", "deadline", "extra_uploads", "reason"]
    autocomplete_fields = ["enrollment"]


class ChallengeExtensionInline(ExtensionInline):
    fields = ["enrollment", "deadline", "extra_uploads", "reason"]


class EnrollmentExtensionInline(ExtensionInline):
    fields = ["challenge", "deadline", "extra_uploads", "reason"]
    autocomplete_fields = []


class RosterUploadForm(forms.Form):
    roster = forms.FileField(
        help_text="CSV with a header: username,email,first_name,last_name (commas or semicolons)"
    )

    def clean_roster(self) -> str:
        try:
            return str(self.cleaned_data["roster"].read().decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise forms.ValidationError("not a UTF-8 text file", code="encoding") from None


@admin.register(Course)
class CourseAdmin(ScopedAdmin):
    """A TA sees the course of their semester, read only: its title, slug and timezone are
    every semester's, so only staff of every semester add, change or delete courses."""

    list_display = ["title", "slug", "timezone"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return sees_every_gradebook(request.user) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Course | None = None) -> bool:
        return sees_every_gradebook(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Course | None = None) -> bool:
        return sees_every_gradebook(request.user) and super().has_delete_permission(request, obj)


@admin.register(Semester)
class SemesterAdmin(ScopedAdmin):
    list_display = ["title", "course", "slug", "starts_on", "is_current", "closed", "closed_at"]
    list_filter = ["course", "is_current", "closed"]
    list_select_related = ["course"]
    search_fields = ["title", "slug", "course__title"]
    readonly_fields = ["closed_at"]
    actions = ["close", "reopen", "invite"]
    change_form_template = "leaderboard/admin/semester_change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A new semester is outside every TA's seats: staff of every semester open one.
        return sees_every_gradebook(request.user) and super().has_add_permission(request)

    @admin.action(
        description="Close semester (uploads refused, boards final)", permissions=["change"]
    )
    def close(self, request: HttpRequest, queryset: QuerySet[Semester]) -> None:
        running = RegradeBatch.objects.filter(
            challenge__semester__in=queryset.filter(closed=False),
            status=RegradeBatch.Status.RUNNING,
            dry_run=False,
        ).count()
        self.message_user(request, f"{semesters_close(queryset)} semester(s) closed.")
        if running:
            self.message_user(
                request,
                f"{running} re-grade(s) still running will not publish while the semester is"
                " closed: they wait, complete, until it is reopened and they are published.",
                messages.WARNING,
            )

    @admin.action(description="Reopen semester", permissions=["change"])
    def reopen(self, request: HttpRequest, queryset: QuerySet[Semester]) -> None:
        self.message_user(request, f"{semesters_reopen(queryset)} semester(s) reopened.")

    @admin.action(
        description="Send invitations to students who never signed in", permissions=["change"]
    )
    def invite(self, request: HttpRequest, queryset: QuerySet[Semester]) -> None:
        for semester in queryset.select_related("course"):
            report = invitations_send(semester, sent_by=request.user)  # type: ignore[arg-type]
            self.message_user(request, f"{semester}: {report}.")

    def get_urls(self) -> list[URLPattern]:
        roster = path(
            "<path:object_id>/import-roster/",
            self.admin_site.admin_view(self.import_roster_view),
            name="courses_semester_import_roster",
        )
        return [roster, *super().get_urls()]

    def import_roster_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        semester: Semester = self.object_or_404(request, object_id)
        if not self.has_change_permission(request, semester):
            raise PermissionDenied
        form = RosterUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            report = roster_import(semester, form.cleaned_data["roster"])
            level = messages.WARNING if report.errors else messages.SUCCESS
            self.message_user(request, f"{semester}: {report}.", level)
            for error in report.errors[:20]:
                self.message_user(request, error, messages.ERROR)
            change = reverse("admin:courses_semester_change", args=[semester.pk])
            return HttpResponseRedirect(change)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "semester": semester,
            "form": form,
            "title": f"Import roster into {semester}",
        }
        return TemplateResponse(request, "leaderboard/admin/import_roster.html", context)


@admin.register(Challenge)
class ChallengeAdmin(ScopedAdmin):
    list_display = ["title", "slug", "task", "semester", "deadline", "threshold", "daily_quota"]
    list_filter = ["semester__course", "semester", "task"]
    list_select_related = ["semester__course"]
    search_fields = ["title", "slug"]
    fieldsets = [
        (None, {"fields": ["semester", "task", "slug", "title", "description"]}),
        (
            "Grading",
            {
                "fields": [
                    "deadline",
                    "threshold",
                    "ranked_by",
                    "data_dir",
                    "device",
                    "reference_model",
                    "show_baseline",
                ]
            },
        ),
        (
            "Policies",
            {
                "fields": [
                    "scoring",
                    "max_selected",
                    "public_fraction",
                    "hold_results",
                    "revealed_at",
                    "late_days_allowed",
                ],
                "description": "Which upload counts, the public / private split of the test"
                " set, and late days (the semester sets the budget). Extensions are below.",
            },
        ),
        (
            "Limits",
            {
                "fields": [
                    "allowed_formats",
                    "max_file_mb",
                    "max_params",
                    "memory_mb",
                    "time_limit_seconds",
                    "daily_quota",
                ]
            },
        ),
    ]
    actions = ["regrade_challenge", "reveal_results", "hide_results", "check_reference"]
    readonly_fields = ["revealed_at"]
    inlines = [ChallengeExtensionInline]
    change_form_template = "leaderboard/admin/challenge_change_form.html"

    def get_form(
        self,
        request: HttpRequest,
        obj: Challenge | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        if sees_every_gradebook(request.user):
            return form
        # A TA picks the hidden test set among the folders their courses' challenges already
        # use: typed freely, it could name another course's hidden set (which its students'
        # models would then be graded on, and its figures read). A new folder is placed on the
        # workers by the site's operators, who also name it here first.
        courses = Course.objects.filter(rows_in_scope(Course, request.user))
        folders = set(
            Challenge.objects.filter(semester__course__in=courses).values_list(
                "data_dir", flat=True
            )
        )
        if obj is not None:
            folders.add(obj.data_dir)
        field = forms.ChoiceField(
            choices=[(f, f) for f in sorted(folders)],
            label="Data dir",
            help_text="The hidden test sets your courses' challenges use; a new one is placed on"
            " the workers and first chosen by the site's staff.",
        )
        return type(form.__name__, (form,), {"data_dir": field})

    def save_model(self, request: HttpRequest, obj: Challenge, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and RULES & set(form.changed_data):
            changed = challenge_rules_changed(obj)
            self.message_user(request, f"{obj}: {changed} standing(s) recomputed under the rules.")

    @admin.action(
        description="Reveal final results (rank by the private part)", permissions=["change"]
    )
    def reveal_results(
        self, request: HttpRequest, queryset: QuerySet[Challenge]
    ) -> HttpResponse | None:
        # Before the last personal window closes: a page naming who may still upload.
        return reveal_confirm(self, request, list(queryset.select_related("semester__course")))

    @admin.action(description="Check with the reference model", permissions=["change"])
    def check_reference(self, request: HttpRequest, queryset: QuerySet[Challenge]) -> None:
        queued = sum(reference_check_start(challenge) for challenge in queryset)
        self.message_user(request, f"{queued} reference check(s) queued; a worker grades them.")
        if queued < len(queryset):
            missing = len(queryset) - queued
            self.message_user(
                request, f"{missing} challenge(s) have no reference model.", messages.WARNING
            )

    @admin.action(
        description="Hide final results again (until the last window closes)",
        permissions=["change"],
    )
    def hide_results(self, request: HttpRequest, queryset: QuerySet[Challenge]) -> None:
        for challenge in queryset:
            challenge_reveal(challenge, hide=True)
        self.message_user(request, f"{len(queryset)} challenge(s): final results hidden.")

    def has_regrade_permission(self, request: HttpRequest) -> bool:
        return has_regrade_permission(request)

    @admin.action(description="Re-grade all submissions", permissions=["regrade"])
    def regrade_challenge(
        self, request: HttpRequest, queryset: QuerySet[Challenge]
    ) -> HttpResponse | None:
        return regrade_confirm(self, request, dict.fromkeys(queryset.select_related("semester")))

    def get_urls(self) -> list[URLPattern]:
        regrade = path(
            "<int:pk>/regrade/",
            self.admin_site.admin_view(self.regrade_view),
            name="courses_challenge_regrade",
        )
        reveal = path(
            "<int:pk>/reveal/",
            self.admin_site.admin_view(self.reveal_view),
            name="courses_challenge_reveal",
        )
        return [regrade, reveal, *super().get_urls()]

    def reveal_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The challenge page's "Reveal final results" button (a POST), through the
        confirmation page while students may still upload."""
        challenge: Challenge = self.object_or_404(request, pk)
        if request.method != "POST" or not self.has_change_permission(request, challenge):
            raise PermissionDenied
        response = self.reveal_results(request, self.get_queryset(request).filter(pk=challenge.pk))
        if response is not None:
            return response
        return HttpResponseRedirect(reverse("admin:courses_challenge_change", args=[pk]))

    def regrade_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The challenge page's "Re-grade…" button: the action's confirmation, for this one."""
        if not has_regrade_permission(request):
            raise PermissionDenied
        challenge: Challenge = self.object_or_404(request, pk)
        response = regrade_confirm(self, request, {challenge: None})
        if response is None:
            change = reverse("admin:courses_challenge_change", args=[challenge.pk])
            return HttpResponseRedirect(f"{change}#regrades")
        return response

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        challenge = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "regrade_batches": [] if challenge is None else recent_batches(challenge, request),
            "can_regrade": has_regrade_permission(request),
            "reference_warnings": [] if challenge is None else reference_warnings(challenge),
        }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Enrollment)
class EnrollmentAdmin(ScopedAdmin):
    list_display = ["handle", "user", "semester", "role", "created_at"]
    list_filter = ["semester__course", "semester", "role"]
    list_select_related = ["user", "semester__course"]
    search_fields = ["handle", "user__username", "user__email"]
    autocomplete_fields = ["user"]
    readonly_fields = ["handle", "created_at"]
    inlines = [EnrollmentExtensionInline]


@admin.register(Extension)
class ExtensionAdmin(ScopedAdmin):
    """Who has which extension: a later deadline and extra uploads a day until it."""

    list_display = ["enrollment", "challenge", "deadline", "extra_uploads", "created_at"]
    list_filter = ["challenge__semester__course", "challenge"]
    list_select_related = ["enrollment__semester__course", "challenge"]
    search_fields = ["enrollment__handle", "enrollment__user__username", "challenge__slug"]
    autocomplete_fields = ["enrollment"]
