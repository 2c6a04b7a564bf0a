"""Pages for signed-in members of a course: a course, a challenge with its upload form, "my
submissions", one result with its charts and pictures, the live status the pages poll, and the
profile with the API token. A result is visible to its owner and the semester's course staff
(``submissions.access``): 404 to anyone else."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from courses.access import AuthedRequest, challenge_for_member, course_for_member, is_staff
from courses.formatting import format_figure, format_score
from courses.models import Challenge, Enrollment, Semester
from leaderboard.kinds import get_page
from submissions.access import can_see_runs, submission_for_viewer, visible_submissions
from submissions.compute import submission_seconds
from submissions.forms import UploadForm, UploadRefused, upload_submit, upload_too_large
from submissions.models import GradingRun, RegradeBatch, Submission
from submissions.policies import (
    PolicyRefused,
    final_results_at,
    late_days_spent,
    results_revealed,
    results_revealed_for,
    selection_open,
    shown_earlier,
    shown_result,
    submission_counted,
    window_for,
)
from submissions.policies import submission_select as submission_select_service
from submissions.queue import coarse_seconds, queue_place
from submissions.services import (
    quota_next_slot,
    quota_used,
)

PAGE_SIZE = 20
SVG = "image/svg+xml"


@login_required
def course_detail(request: AuthedRequest, slug: str) -> HttpResponse:
    course = course_for_member(request.user, slug)
    semesters = course.semesters.all()
    if not is_staff(request.user):
        semesters = semesters.filter(enrollments__user=request.user)
    challenges = Challenge.objects.filter(semester__in=semesters).select_related("semester")
    by_semester: dict[int, list[Challenge]] = {}
    for challenge in challenges:
        by_semester.setdefault(challenge.semester_id, []).append(challenge)
    return render(
        request,
        "leaderboard/student/course.html",
        {
            "course": course,
            "sections": [
                (s, by_semester.get(s.pk, []), _late_days_left(request.user, s)) for s in semesters
            ],
            "now": timezone.now(),
        },
    )


def _late_days_left(user: Any, semester: Semester) -> int | None:
    """The student's late days left in ``semester``; None without a budget (no queries)."""
    if not semester.late_days:
        return None
    enrollment = Enrollment.objects.filter(user=user, semester=semester).first()
    if enrollment is None:
        return None
    return max(0, semester.late_days - sum(late_days_spent(enrollment).values()))


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
        if request.method == "POST":
            try:
                submission = upload_submit(form)
            except UploadRefused as exc:
                if exc.code == "storage":  # nothing stored: the platform's fault, not the file's
                    return _storage_failed(request, challenge, exc)
            else:
                messages.success(request, _("Uploaded. Grading usually takes a few seconds."))
                return redirect("submission_detail", pk=submission.pk)
    recent = (
        Submission.objects.filter(enrollment=enrollment, challenge=challenge).select_related(
            "challenge__semester__course"
        )[:5]
        if enrollment
        else []
    )
    used = quota_used(enrollment, challenge, now) if enrollment else 0
    # The student's own deadline, quota and late days (an extension, the semester's budget).
    window = window_for(enrollment, challenge, now) if enrollment else None
    quota = window.quota if window else challenge.daily_quota
    return render(
        request,
        "leaderboard/student/challenge.html",
        {
            "challenge": challenge,
            "course": challenge.semester.course,
            "enrollment": enrollment,
            "form": form,
            "is_open": not challenge.semester.closed
            and now < (window.closes_at if window else challenge.deadline),
            "window": window,
            "late_now": window is not None and now >= window.deadline,
            # Final results: for this student (their window closed too), for the class, and
            # when they come out by themselves (the last personal window closes).
            "revealed": results_revealed_for(challenge, enrollment, now),
            "class_revealed": results_revealed(challenge, now),
            "final_results_at": final_results_at(challenge) if challenge.has_split else None,
            "quota": quota,
            "quota_used": used,
            "quota_left": max(0, quota - used),
            "quota_next": quota_next_slot(enrollment, challenge, now) if enrollment else None,
            "recent": recent,
        },
    )


def _storage_failed(request: HttpRequest, challenge: Challenge, exc: UploadRefused) -> HttpResponse:
    """The page for an upload that storage could not take (the API's 503 ``storage``)."""
    response = render(
        request,
        "leaderboard/student/upload_failed.html",
        {"challenge": challenge, "course": challenge.semester.course, "message": exc.message},
        status=exc.http_status,
    )
    if exc.retry_after:
        response["Retry-After"] = str(exc.retry_after)
    return response


@login_required
def submission_list(request: AuthedRequest) -> HttpResponse:
    # Staff and TAs see everyone's uploads on the result pages; this list is always one's own.
    submissions = Submission.objects.filter(enrollment__user=request.user).select_related(
        "challenge__semester__course"
    )
    page = Paginator(submissions, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "leaderboard/student/list.html",
        {"page": page, "any_pending": any(s.is_pending for s in page)},
    )


@login_required
def submission_detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    submission = submission_for_viewer(request.user, pk)
    show_runs = can_see_runs(request.user, submission)
    is_owner = submission.enrollment.user_id == request.user.pk
    challenge = submission.challenge
    regraded = _last_regrade(submission)
    selectable = (
        is_owner
        and challenge.scoring == Challenge.Scoring.SELECTED
        and submission.status == Submission.Status.GRADED
        and selection_open(submission, timezone.now())
    )
    return render(
        request,
        "leaderboard/student/detail.html",
        {
            "submission": submission,
            "challenge": challenge,
            "course": challenge.semester.course,
            "is_owner": is_owner,
            "shown": shown_result(submission),
            "counted": submission_counted(submission),
            "selectable": selectable,
            "runs": submission.runs.all() if show_runs else None,
            "metrics": _extra_metrics(submission) if show_runs else [],
            "regraded": regraded,
            "earlier": shown_earlier(regraded) if regraded else None,
            "queue": queue_place(submission).text,
            # Coarse on purpose: a model must not signal through its running time.
            "grading_seconds": coarse_seconds(submission_seconds(submission)),
            **result_facts(submission),
        },
    )


@require_POST
@login_required
def submission_select(request: AuthedRequest, pk: UUID) -> HttpResponse:
    """The result page's "Select / Unselect" button (the API's ``select/``, for a browser)."""
    submission = submission_for_viewer(request.user, pk)
    if submission.enrollment.user_id != request.user.pk:
        raise Http404("no such submission of yours")
    try:
        submission_select_service(submission, request.POST.get("selected") == "1")
    except PolicyRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Selected: the best of your selected uploads counts.")
            if submission.selected
            else _("Unselected."),
        )
    return redirect("submission_detail", pk=submission.pk)


def result_facts(submission: Submission) -> dict[str, object]:
    """What a graded result shows beside its score: the kind's other figures, and its charts
    and pictures (``leaderboard.kinds``)."""
    challenge = submission.challenge
    kind = challenge.kind
    if submission.status != Submission.Status.GRADED:
        return {"figures": [], "charts": [], "pictures": {}}
    page = get_page(challenge.task)
    # Before the reveal of a split challenge: the public part's figures only.
    metrics = shown_result(submission).metrics
    stored = submission.pictures if isinstance(submission.pictures, dict) else {}
    return {
        "ranked_means": _(kind.ranked_options[challenge.score_key])
        if kind.ranked_options.get(challenge.score_key)
        else "",
        "figures": [
            (_(figure.label), format_figure(metrics.get(figure.key), figure.style))
            for figure in kind.figures
            if figure.key != challenge.score_key and figure.key in metrics
        ],
        "kind_page": page,
        "charts": page.shown_charts(metrics),
        "pictures": {name: p for name, p in page.pictures.items() if stored.get(name)},
    }


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
    kind = submission.challenge.kind
    graded = submission.status == Submission.Status.GRADED
    shown = shown_result(submission)
    state: dict[str, object] = {
        "id": str(submission.pk),
        "status": submission.status,
        "status_label": submission.get_status_display(),
        "pending": submission.is_pending,
        "score": format_score(shown.score, kind.score_display) if graded else "",
        "passed": shown.passed,
        "error": submission.error,
        # "3rd in the queue, about 20 s" while queued
        "queue": queue_place(submission).text,
    }
    # The headline figures under their metric's name (keypoints: "mse"), as the page shows them.
    for figure in kind.figures:
        if figure.headline:
            value = shown.metrics.get(figure.key) if graded else None
            state[figure.key] = format_figure(value, figure.style) if graded else ""
    return state


# --- a result's charts and pictures -----------------------------------------------------------


def _graded(request: HttpRequest, pk: UUID) -> Submission:
    submission = submission_for_viewer(request.user, pk)
    if submission.status != Submission.Status.GRADED:
        raise Http404("no figures for this submission")
    return submission


@require_GET
def submission_chart(request: HttpRequest, pk: UUID, name: str) -> HttpResponse:
    """A chart the kind draws from a graded result's metrics (segmentation: per-class bars)."""
    submission = _graded(request, pk)
    metrics = shown_result(submission).metrics
    chart = get_page(submission.challenge.task).charts_for(metrics).get(name)
    svg = chart.draw(metrics) if chart else None
    if svg is None:
        raise Http404("no such chart for this submission")
    response = HttpResponse(svg, content_type=SVG)
    patch_cache_control(response, private=True, max_age=300)
    return response


@require_GET
def submission_picture(request: HttpRequest, pk: UUID, name: str) -> FileResponse:
    """A picture the worker drew after grading (segmentation: masks on public samples)."""
    submission = _graded(request, pk)
    stored = submission.pictures.get(name) if isinstance(submission.pictures, dict) else None
    if not isinstance(stored, str) or not stored:
        raise Http404("no such picture for this submission")
    try:
        stream = default_storage.open(stored, "rb")
    except FileNotFoundError as exc:
        raise Http404("no such picture for this submission") from exc
    response = FileResponse(stream, content_type="image/png")
    patch_cache_control(response, private=True, max_age=300)
    return response
