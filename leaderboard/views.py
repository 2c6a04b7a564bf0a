"""Home, a course's page and archive, the public leaderboard of a challenge and its grade book."""

from __future__ import annotations

import csv

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from grader.evaluate import json_number
from leaderboard.access import (
    AuthedRequest,
    challenge_for_staff,
    challenge_public,
    course_for_member,
    course_public,
    is_course_staff,
    is_staff,
)
from leaderboard.models import Challenge, Enrollment, Semester
from leaderboard.services import challenge_other_semesters, gradebook_rows, leaderboard_build

ROWS_PER_PAGE = 100


def home(request: HttpRequest) -> HttpResponse:
    """Signed in: the user's courses and their current challenges. Otherwise: public boards."""
    if not request.user.is_authenticated:
        current = Challenge.objects.filter(semester__is_current=True).select_related(
            "semester__course"
        )
        return render(request, "leaderboard/home_public.html", {"challenges": current})
    enrollments = (
        Enrollment.objects.filter(user=request.user)
        .select_related("semester__course")
        .order_by("semester__course__title", "-semester__starts_on")
    )
    semesters = [e.semester for e in enrollments]
    if is_staff(request.user):
        semesters += list(
            Semester.objects.filter(is_current=True)
            .exclude(pk__in=[s.pk for s in semesters])
            .select_related("course")
        )
    challenges = Challenge.objects.filter(semester__in=semesters).select_related("semester__course")
    by_semester: dict[int, list[Challenge]] = {}
    for challenge in challenges:
        by_semester.setdefault(challenge.semester_id, []).append(challenge)
    handles = {e.semester_id: e for e in enrollments}
    return render(
        request,
        "leaderboard/home.html",
        {
            "sections": [(s, handles.get(s.pk), by_semester.get(s.pk, [])) for s in semesters],
            "now": timezone.now(),
        },
    )


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
        "leaderboard/course.html",
        {
            "course": course,
            "sections": [(s, by_semester.get(s.pk, [])) for s in semesters],
            "now": timezone.now(),
        },
    )


def course_archive(request: HttpRequest, slug: str) -> HttpResponse:
    """Public like the boards it links to: the semesters before the current one."""
    course = course_public(slug)
    semesters = list(course.semesters.prefetch_related("challenges"))
    current = next((s for s in semesters if s.is_current), None)
    earlier = [
        s
        for s in semesters
        if not s.is_current and (current is None or s.starts_on < current.starts_on)
    ]
    return render(request, "leaderboard/archive.html", {"course": course, "semesters": earlier})


def challenge_leaderboard(request: HttpRequest, slug: str) -> HttpResponse:
    """Public, no sign-in: handles are pseudonyms."""
    challenge = challenge_public(slug)
    board = leaderboard_build(challenge)
    page = Paginator(board.rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    mine = board.index_of(request.user.pk) if request.user.is_authenticated else None
    return render(
        request,
        "leaderboard/leaderboard.html",
        {
            "challenge": challenge,
            "course": challenge.semester.course,
            "board": board,
            "page": page,
            "my_page": None if mine is None else mine // ROWS_PER_PAGE + 1,
            "others": challenge_other_semesters(challenge),
            "show_mse": challenge.task == "keypoints",
            "is_course_staff": is_course_staff(request.user, challenge.semester),
        },
    )


@login_required
def challenge_staff(request: AuthedRequest, slug: str) -> HttpResponse:
    """The grade book: who is behind each handle, every student of the semester."""
    challenge = challenge_for_staff(request.user, slug)
    return render(
        request,
        "leaderboard/staff.html",
        {
            "challenge": challenge,
            "course": challenge.semester.course,
            "rows": gradebook_rows(challenge),
            "show_mse": challenge.task == "keypoints",
        },
    )


@login_required
def challenge_passes_csv(request: AuthedRequest, slug: str) -> HttpResponse:
    """The pass list for the grade book, one row per student, times in the course's timezone."""
    challenge = challenge_for_staff(request.user, slug)
    zone = challenge.semester.course.tzinfo
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{challenge.semester.slug}-{challenge.slug}-passes.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(
        ["username", "email", "handle", "best_score", "passed", "submissions", "best_submitted_at"]
    )
    for row in gradebook_rows(challenge):
        writer.writerow(
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
            ]
        )
    return response
