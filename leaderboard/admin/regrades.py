"""Re-grading in the admin: the confirmation page every re-grade action goes through, the batch
list and page with live progress, Publish and Cancel."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme

from courses.models import Challenge
from leaderboard.admin.scope import ScopedAdmin
from submissions.lifecycle import FINISHED
from submissions.models import RegradeBatch, Submission
from submissions.regrade import (
    Progress,
    RegradeRefused,
    regrade_batch_cancel,
    regrade_batch_publish,
    regrade_batch_start,
)

#: challenge → the submissions chosen (None: all of the challenge's graded or failed ones)
Selection = dict[Challenge, list[Submission] | None]


def has_regrade_permission(request: HttpRequest) -> bool:
    return request.user.has_perm("submissions.regrade_submission")


class RegradeForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        max_length=2000,
        help_text="Recorded in the admin log with your name, e.g. “test set replaced”.",
    )
    dry_run = forms.BooleanField(
        required=False,
        label="Dry run",
        help_text="Compute and report the new results without publishing them. You can"
        " publish them later from the challenge's page.",
    )


def _preview(selection: Selection) -> list[dict[str, Any]]:
    """What confirming would start: per challenge, how many submissions, or why it may not."""
    rows = []
    for challenge, chosen in selection.items():
        finished = Submission.objects.filter(challenge=challenge, status__in=FINISHED)
        if chosen is not None:
            finished = finished.filter(pk__in=[s.pk for s in chosen])
        count = finished.count()
        skipped = 0 if chosen is None else len(chosen) - count
        refusal = ""
        if challenge.semester.closed:
            refusal = f"The {challenge.semester} semester is closed: reopen it first."
        elif not count:
            refusal = "No graded or failed submission to re-grade."
        rows.append(
            {"challenge": challenge, "count": count, "skipped": skipped, "refusal": refusal}
        )
    return rows


def regrade_confirm(
    model_admin: admin.ModelAdmin, request: HttpRequest, selection: Selection
) -> HttpResponse | None:
    """Ask for a reason (and whether it is a dry run), then start one batch per challenge.

    Used by both admin actions and by the challenge page's "Re-grade…" button. Returns None once
    started (an action then goes back to the list), else the confirmation page.
    """
    form = RegradeForm(request.POST if request.POST.get("post") == "yes" else None)
    if form.is_valid():
        for challenge, chosen in selection.items():
            try:
                batch = regrade_batch_start(
                    challenge,
                    request.user,
                    form.cleaned_data["reason"],
                    submissions=chosen,
                    dry_run=form.cleaned_data["dry_run"],
                )
            except RegradeRefused as exc:
                model_admin.message_user(request, str(exc), messages.ERROR)
                continue
            page = reverse("admin:courses_challenge_change", args=[challenge.pk])
            model_admin.message_user(
                request,
                format_html(
                    "{} #{} of {}: {} submission(s) queued for re-grading."
                    ' <a href="{}#regrades">Follow its progress</a>.',
                    "Dry run" if batch.dry_run else "Re-grade",
                    batch.pk,
                    challenge.slug,
                    batch.total,
                    page,
                ),
                messages.SUCCESS,
            )
        return None
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "title": "Re-grade submissions",
        "form": form,
        "preview": _preview(selection),
        "action": request.POST.get("action", ""),
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", ""),
        "back": request.get_full_path(),
    }
    return TemplateResponse(request, "leaderboard/admin/regrade_confirm.html", context)


def batch_state(batch: RegradeBatch, request: HttpRequest) -> dict[str, Any]:
    """One batch as the challenge page's live progress shows it (``regrade_progress.js``)."""
    allowed = has_regrade_permission(request)
    progress = Progress.of(batch)
    return {
        "id": batch.pk,
        "status": batch.status,
        "status_label": batch.get_status_display(),
        "done": progress.done,
        "total": progress.total,
        "failed": progress.failed,
        "progress": str(progress),
        "note": batch.note,
        "can_publish": allowed and batch.status == RegradeBatch.Status.COMPLETE,
        "can_cancel": allowed
        and batch.status in (RegradeBatch.Status.RUNNING, RegradeBatch.Status.COMPLETE),
    }


def recent_batches(challenge: Challenge, request: HttpRequest, limit: int = 5) -> list[Any]:
    """The challenge's latest batches with their state, for its admin page."""
    batches = (
        RegradeBatch.objects.with_progress()
        .filter(challenge=challenge)
        .select_related("created_by", "published_by")
        .order_by("-created_at")[:limit]
    )
    return [(batch, batch_state(batch, request)) for batch in batches]


BATCH_FIELDS = (
    "challenge",
    "created_by",
    "reason",
    "dry_run",
    "status",
    "note",
    "total",
    "progress",
    "created_at",
    "finished_at",
    "threshold",
    "score_key",
    "published_at",
    "published_by",
    "report",
)


@admin.register(RegradeBatch)
class RegradeBatchAdmin(ScopedAdmin):
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
    list_filter = ["status", "dry_run", "challenge__semester", "challenge"]
    list_select_related = ["challenge", "created_by"]
    search_fields = ["reason", "challenge__slug", "created_by__username"]
    date_hierarchy = "created_at"
    fields = readonly_fields = BATCH_FIELDS
    change_form_template = "leaderboard/admin/regradebatch_change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[RegradeBatch]:
        # Progress in the page's one query, not one per row.
        return super().get_queryset(request).with_progress()  # type: ignore[attr-defined]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="progress")
    def progress(self, obj: RegradeBatch) -> str:
        return str(Progress.of(obj))

    @admin.display(description="report")
    def report(self, obj: RegradeBatch) -> str:
        return format_html('<a href="{}">changes</a>', reverse("regrade_report", args=[obj.pk]))

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("progress/", view(self.progress_view), name="submissions_regradebatch_progress"),
            path(
                "<int:pk>/publish/",
                view(self.publish_view),
                name="submissions_regradebatch_publish",
            ),
            path(
                "<int:pk>/cancel/", view(self.cancel_view), name="submissions_regradebatch_cancel"
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        batch = self.get_object(request, object_id)
        rows = [] if batch is None else [(batch, batch_state(batch, request))]
        extra_context = {**(extra_context or {}), "regrade_batches": rows}
        return super().change_view(request, object_id, form_url, extra_context)

    def progress_view(self, request: HttpRequest) -> JsonResponse:
        """The state of the batches the page asks about (``?id=``), for live progress."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        # isdecimal() alone lets "²" and "٣" through, and a 30-digit id overflows the column
        ids = [
            int(i)
            for i in request.GET.getlist("id")
            if i.isascii() and i.isdecimal() and len(i) <= 18
        ][:50]
        batches = self.get_queryset(request).filter(pk__in=ids)
        return JsonResponse({"batches": [batch_state(b, request) for b in batches]})

    def _act(self, request: HttpRequest, pk: int, publish: bool) -> HttpResponse:
        if not has_regrade_permission(request):
            raise PermissionDenied
        batch: RegradeBatch = self.object_or_404(request, pk)
        try:
            if publish:
                updated = regrade_batch_publish(batch, request.user)
                done = f"Re-grade #{batch.pk} published: {updated} submission(s) updated."
            else:
                cancelled = regrade_batch_cancel(batch, request.user)
                done = f"Re-grade #{batch.pk} cancelled ({cancelled} attempt(s) not run)."
        except RegradeRefused as exc:
            self.message_user(request, f"Re-grade #{batch.pk} not changed: {exc}", messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)
        back = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(back, {request.get_host()}):
            back = reverse("admin:submissions_regradebatch_change", args=[batch.pk])
        return HttpResponseRedirect(back)

    def publish_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(status=405)
        return self._act(request, pk, publish=True)

    def cancel_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(status=405)
        return self._act(request, pk, publish=False)
