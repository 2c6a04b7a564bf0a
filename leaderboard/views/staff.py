"""Pages for course staff outside the admin: a challenge's grade book and pass list, what a
re-grade changed, and the platform's health. Each answers 404 to anyone who may not see it."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import PermissionsMixin
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _

from courses.access import AuthedRequest, User, challenge_for_staff, is_course_staff, is_staff
from grader.evaluate import json_number
from leaderboard import charts
from leaderboard.boards import gradebook_rows
from leaderboard.csv_export import csv_response
from leaderboard.views.public import headline_figures
from submissions import health
from submissions.compute import compute_per_hour, grading_seconds_by_username
from submissions.copies import copy_pairs
from submissions.models import HealthAlert, RegradeBatch
from submissions.regrade import Progress, regrade_batch_report


def batch_for_staff(user: User, pk: int) -> RegradeBatch:
    """A re-grade batch, for whoever sees its challenge's grade book (404 to anyone else)."""
    batch = RegradeBatch.objects.select_related("challenge__semester", "created_by").filter(pk=pk)
    found = batch.first()
    if found is None or not is_course_staff(user, found.challenge.semester):
        raise Http404("no such re-grade")
    return found


@login_required
def regrade_report(request: AuthedRequest, pk: int) -> HttpResponse:
    batch = batch_for_staff(request.user, pk)
    changes = regrade_batch_report(batch)
    if request.GET.get("format") == "csv":
        header = [
            "submission",
            "handle",
            "username",
            "old_score",
            "new_score",
            "old_passed",
            "new_passed",
        ]
        rows = (
            [
                c.submission_id,
                c.handle,
                c.username,
                c.old_score,
                c.new_score,
                c.old_passed,
                c.new_passed,
            ]
            for c in changes
        )
        return csv_response(f"regrade-{batch.pk}.csv", header, rows)
    context = {"batch": batch, "changes": changes, "progress": Progress.of(batch)}
    return render(request, "leaderboard/staff/regrade_report.html", context)


@login_required
def challenge_staff(request: AuthedRequest, slug: str) -> HttpResponse:
    """The grade book: who is behind each handle, every student of the semester."""
    challenge = challenge_for_staff(request.user, slug)
    return render(
        request,
        "leaderboard/staff/gradebook.html",
        {
            "challenge": challenge,
            "course": challenge.semester.course,
            "rows": gradebook_rows(challenge),
            "headline": headline_figures(challenge),
            # Total grading seconds of each student's uploads (username -> seconds).
            "compute": grading_seconds_by_username(challenge),
        },
    )


@login_required
def challenge_passes_csv(request: AuthedRequest, slug: str) -> HttpResponse:
    """The pass list for the grade book, one row per student, times in the course's timezone."""
    challenge = challenge_for_staff(request.user, slug)
    zone = challenge.semester.course.tzinfo
    # "best_score" is the counted upload's score under the challenge's policies (public before
    # the reveal, private after); the name stays for scripts that read the file.
    header = [
        "username",
        "email",
        "handle",
        "best_score",
        "passed",
        "submissions",
        "best_submitted_at",
        "late_days",
    ]
    rows = (
        [
            row.username,
            row.email,
            row.handle,
            "" if row.best_score is None else json_number(row.best_score),
            "yes" if row.passed else "no",
            row.submissions,
            ""
            if row.best_submitted_at is None
            else row.best_submitted_at.astimezone(zone).isoformat(timespec="seconds"),
            row.late_days,
        ]
        for row in gradebook_rows(challenge)
    )
    return csv_response(f"{challenge.semester.slug}-{challenge.slug}-passes.csv", header, rows)


# --- copies ----------------------------------------------------------------------------------

#: pairs per page of a challenge's copies report
COPIES_PER_PAGE = 50


def challenge_copies(request: HttpRequest, slug: str) -> HttpResponse:
    """Uploads of different students that look copied (``submissions.copies``), computed when
    each was graded: this page only reads them. 404 for anyone but course staff, the
    signed-out too (no sign-in page that would tell the report exists)."""
    challenge = challenge_for_staff(request.user, slug)
    page = Paginator(copy_pairs(challenge), COPIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "leaderboard/staff/copies.html",
        {"challenge": challenge, "course": challenge.semester.course, "page": page},
    )


def challenge_copies_csv(request: HttpRequest, slug: str) -> HttpResponse:
    """The copies report as CSV: one row per pair, the earlier upload as ``a``."""
    challenge = challenge_for_staff(request.user, slug)
    zone = challenge.semester.course.tzinfo
    header = [
        "user_a",
        "user_b",
        "name_a",
        "name_b",
        "handle_a",
        "handle_b",
        "semester_a",
        "semester_b",
        "evidence",
        "similarity",
        "submission_a",
        "submission_b",
        "uploaded_a",
        "uploaded_b",
        "score_a",
        "score_b",
    ]
    rows = (
        [
            pair.first.enrollment.user.username,
            pair.second.enrollment.user.username,
            pair.first.enrollment.user.get_full_name(),
            pair.second.enrollment.user.get_full_name(),
            pair.first.enrollment.handle,
            pair.second.enrollment.handle,
            pair.first.challenge.semester.slug,
            pair.second.challenge.semester.slug,
            pair.evidence,
            round(pair.similarity, 6),
            pair.first.pk,
            pair.second.pk,
            pair.first.created_at.astimezone(zone).isoformat(timespec="seconds"),
            pair.second.created_at.astimezone(zone).isoformat(timespec="seconds"),
            "" if pair.first.score is None else json_number(pair.first.score),
            "" if pair.second.score is None else json_number(pair.second.score),
        ]
        for pair in copy_pairs(challenge).iterator()
    )
    return csv_response(f"{challenge.semester.slug}-{challenge.slug}-copies.csv", header, rows)


# --- the platform's health --------------------------------------------------------------------


def can_watch_health(user: User) -> bool:
    """Site staff, or anyone allowed to read grade books (teaching assistants)."""
    if is_staff(user):
        return True
    return isinstance(user, PermissionsMixin) and user.has_perm("courses.view_gradebook")


def health_context() -> dict[str, object]:
    now = timezone.now()
    queues = health.queues()
    return {
        "now": now,
        "workers": health.workers(now),
        "queues": [(q, round(q.oldest_seconds(now))) for q in queues],
        "failures": health.failures_last_hour(now),
        "alerts": HealthAlert.objects.filter(resolved_at__isnull=True),
        "notes": health.notes(),
    }


@login_required
def platform_health(request: AuthedRequest) -> HttpResponse:
    """Workers, queues and failures; the page re-renders its body every few seconds. The
    compute of the last 24 hours (a chart and its table) is drawn with the full page only."""
    if not can_watch_health(request.user):
        raise Http404("no such page")
    if request.GET.get("part") == "body":
        return render(request, "leaderboard/staff/_health.html", health_context())
    return render(
        request,
        "leaderboard/staff/health.html",
        {**health_context(), "compute": compute_per_hour()},
    )


@login_required
def platform_compute_chart(request: AuthedRequest) -> HttpResponse:
    """Grading seconds per hour of the last 24 hours, by challenge, as an SVG chart."""
    if not can_watch_health(request.user):
        raise Http404("no such page")
    compute = compute_per_hour()
    zone = timezone.get_current_timezone()
    svg = charts.compute_per_hour(
        [hour.astimezone(zone).strftime("%H:%M") for hour in compute.hours],
        [(row.challenge, row.seconds) for row in compute.rows],
        label=_("grading seconds per hour"),
        empty=_("No grading finished in the last 24 hours."),
    )
    response = HttpResponse(svg, content_type="image/svg+xml")
    patch_cache_control(response, private=True, max_age=60)
    return response
