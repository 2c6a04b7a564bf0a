"""Home, a course's page and the public leaderboard of a challenge."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from leaderboard.access import AuthedRequest, challenge_public, course_for_member, is_staff
from leaderboard.models import Challenge, Enrollment, Semester
from leaderboard.services import challenge_other_semesters, leaderboard_rows

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


def challenge_leaderboard(request: HttpRequest, slug: str) -> HttpResponse:
    """Public, no sign-in: handles are pseudonyms."""
    challenge = challenge_public(slug)
    rows = leaderboard_rows(challenge)
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "leaderboard/leaderboard.html",
        {
            "challenge": challenge,
            "course": challenge.semester.course,
            "page": page,
            "passed_count": sum(1 for row in rows if row.passed),
            "others": challenge_other_semesters(challenge),
            "show_mse": challenge.task == "keypoints",
        },
    )
