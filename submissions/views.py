"""The student's pages: a challenge with its upload form, "my submissions", one result."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from leaderboard.access import AuthedRequest, challenge_for_member
from leaderboard.formatting import format_mse, format_score
from submissions.access import can_see_runs, submission_for_viewer, visible_submissions
from submissions.forms import UploadForm, upload_too_large
from submissions.models import GradingRun, RegradeBatch, Submission
from submissions.services import (
    SubmissionRefused,
    quota_next_slot,
    quota_used,
    submission_create,
)

PAGE_SIZE = 20


@login_required
def challenge_detail(request: HttpRequest, slug: str) -> HttpResponse:
    challenge, enrollment = challenge_for_member(request.user, slug)
    now = timezone.now()
    form = None
    if request.method == "POST" and (too_large := upload_too_large(request, challenge)):
        messages.error(request, too_large)
        return redirect("challenge_detail", slug=challenge.slug)
    if enrollment is not None:
        form = UploadForm(
            request.POST or None,
            request.FILES or None,
            challenge=challenge,
            enrollment=enrollment,
            now=now,
        )
        if request.method == "POST" and form.is_valid():
            try:
                submission = submission_create(
                    enrollment=enrollment,
                    challenge=challenge,
                    upload=form.cleaned_data["file"],
                    fmt=form.format,
                )
            except SubmissionRefused as exc:  # lost a race for the last quota slot
                form.add_error(None, exc.message)
            else:
                messages.success(request, "Uploaded. Grading usually takes a few seconds.")
                return redirect("submission_detail", pk=submission.pk)
    recent = (
        Submission.objects.filter(enrollment=enrollment, challenge=challenge).select_related(
            "challenge__semester__course"
        )[:5]
        if enrollment
        else []
    )
    used = quota_used(enrollment, challenge, now) if enrollment else 0
    return render(
        request,
        "submissions/challenge.html",
        {
            "challenge": challenge,
            "course": challenge.semester.course,
            "enrollment": enrollment,
            "form": form,
            "is_open": challenge.is_open(now),
            "quota_used": used,
            "quota_left": max(0, challenge.daily_quota - used),
            "quota_next": quota_next_slot(enrollment, challenge, now) if enrollment else None,
            "recent": recent,
        },
    )


@login_required
def submission_list(request: AuthedRequest) -> HttpResponse:
    # Staff and TAs see everyone's uploads on the result pages; this list is always one's own.
    submissions = Submission.objects.filter(enrollment__user=request.user).select_related(
        "challenge__semester__course"
    )
    page = Paginator(submissions, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "submissions/list.html",
        {"page": page, "any_pending": any(s.is_pending for s in page)},
    )


@login_required
def submission_detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    submission = submission_for_viewer(request.user, pk)
    show_runs = can_see_runs(request.user, submission)
    return render(
        request,
        "submissions/detail.html",
        {
            "submission": submission,
            "challenge": submission.challenge,
            "course": submission.challenge.semester.course,
            "is_owner": submission.enrollment.user_id == request.user.pk,
            "runs": submission.runs.all() if show_runs else None,
            "metrics": _extra_metrics(submission) if show_runs else [],
            "regraded": _last_regrade(submission),
        },
    )


def _last_regrade(submission: Submission) -> GradingRun | None:
    """The published re-grade the current result comes from, if any: students see when and
    what they had before, so a changed score is never a mystery."""
    return (
        submission.runs.filter(
            batch__status=RegradeBatch.Status.PUBLISHED,
            # Only these gave the submission a result; a lost attempt left the old one.
            outcome__in=[GradingRun.Outcome.GRADED, GradingRun.Outcome.REJECTED],
        )
        .select_related("batch")
        .order_by("-batch__published_at")
        .first()
    )


def _extra_metrics(submission: Submission) -> list[tuple[str, object]]:
    return sorted((k, v) for k, v in submission.metrics.items() if not k.startswith("per_class"))


@require_GET
@login_required
def submission_live(request: HttpRequest) -> JsonResponse:
    """Status of the given submissions, for the page's poller (every 2 s while any is pending)."""
    ids = request.GET.getlist("id")[:PAGE_SIZE]
    try:
        wanted = [UUID(i) for i in ids]
    except ValueError:
        return JsonResponse({"error": "id must be a submission id"}, status=400)
    rows = visible_submissions(request.user).filter(pk__in=wanted).select_related("challenge")
    return JsonResponse({"submissions": [live_state(s) for s in rows]})


def live_state(submission: Submission) -> dict[str, object]:
    challenge = submission.challenge
    graded = submission.status == Submission.Status.GRADED
    return {
        "id": str(submission.pk),
        "status": submission.status,
        "status_label": submission.get_status_display(),
        "pending": submission.is_pending,
        "score": format_score(submission.score, challenge.kind.score_display) if graded else "",
        "mse": format_mse(submission.mse) if graded and challenge.task == "keypoints" else "",
        "passed": submission.passed,
        "error": submission.error,
    }
