"""Pages for everyone, signed in or not: the home page, a course's archive of earlier semesters, a
challenge's leaderboard and its histogram. Boards are public: they show pseudonymous handles."""

from __future__ import annotations

import math

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from courses.access import challenge_public, course_public, is_course_staff, is_staff
from courses.models import Challenge, Enrollment, Semester
from grader.kinds import Figure
from leaderboard import charts
from leaderboard.board_pages import PER_PAGE, board_page, score_bins
from leaderboard.boards import board_version, challenge_other_semesters, leaderboard_build
from submissions.policies import results_revealed_to
from submissions.reference import reference_baseline

ROWS_PER_PAGE = PER_PAGE


def home(request: HttpRequest) -> HttpResponse:
    """Signed in: the user's courses and their current challenges. Otherwise: public boards."""
    if not request.user.is_authenticated:
        current = Challenge.objects.filter(semester__is_current=True).select_related(
            "semester__course"
        )
        return render(request, "leaderboard/public/home_public.html", {"challenges": current})
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
        "leaderboard/public/home.html",
        {
            "sections": [(s, handles.get(s.pk), by_semester.get(s.pk, [])) for s in semesters],
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
    return render(
        request, "leaderboard/public/archive.html", {"course": course, "semesters": earlier}
    )


def headline_figures(challenge: Challenge) -> list[Figure]:
    """The kind's figures that a board shows as columns beside the score."""
    return [figure for figure in challenge.kind.figures if figure.headline]


def challenge_leaderboard(request: HttpRequest, slug: str) -> HttpResponse:
    """Public, no sign-in: handles are pseudonyms. One page of the board (``?page=N``;
    ``?page=mine``: the signed-in student's own), ranked by the database."""
    challenge = challenge_public(slug)
    # A student whose own window is still open after an early reveal sees the public phase.
    revealed = results_revealed_to(challenge, request.user)
    board = board_page(
        challenge,
        revealed,
        request.GET.get("page"),
        user_id=request.user.pk if request.user.is_authenticated else None,
        per_page=ROWS_PER_PAGE,
    )
    return render(
        request,
        "leaderboard/public/leaderboard.html",
        {
            "challenge": challenge,
            "course": challenge.semester.course,
            "board": board,
            "page": board.page,
            "rows": board.rows,
            # compared on every row: read once, not through the lazy request.user
            "me": request.user.pk,
            "my_page": board.my_page,
            "others": challenge_other_semesters(challenge),
            "headline": headline_figures(challenge),
            "is_course_staff": is_course_staff(request.user, challenge.semester),
            "revealed": revealed,
        },
    )


# --- the board's histogram ----------------------------------------------------------------

SVG = "image/svg+xml"
#: the board's figure may lag a new result by this much in browsers and proxies
HISTOGRAM_MAX_AGE = 60
#: new results change the key; the expiry only bounds staleness after a deletion
HISTOGRAM_CACHE_SECONDS = 3600


def histogram_cache_key(challenge: Challenge, revealed: bool) -> str:
    """Changes whenever the board does (a result, a re-grade, a selection, a policy change,
    the reveal), the threshold moves or the baseline changes: one query (``board_version``); one
    per language, since its axes are written out."""
    baseline = reference_baseline(challenge, revealed)
    mark = "none" if baseline is None else f"{baseline.score!r}"
    return (
        f"histogram:{challenge.pk}:{challenge.threshold!r}:{mark}:"
        f"{board_version(challenge, revealed)}:{get_language()}"
    )


def challenge_best_scores(challenge: Challenge, revealed: bool | None = None) -> list[float]:
    """The score each ranked student has on the board now: the counted upload's public score
    before the reveal, its private score after (a histogram of whole-set scores would tell
    the private part before the deadline)."""
    return [row.score for row in leaderboard_build(challenge, revealed).rows]


def score_label_inline(challenge: Challenge) -> str:
    """The score's name inside a phrase: "best accuracy"; German keeps its noun capitalised."""
    label = challenge.kind.score_label
    translated = _(label)
    return label.lower() if translated == label else translated


def challenge_histogram_svg(challenge: Challenge, revealed: bool) -> bytes:
    """The board's histogram in the viewer's phase, binned by the database (two queries
    whatever the number of students) and drawn once per change of the board."""
    key = histogram_cache_key(challenge, revealed)
    svg = cache.get(key)
    if svg is None:
        percent = challenge.kind.score_display == "percent"
        scale = 100.0 if percent else 1.0
        baseline = reference_baseline(challenge, revealed)
        mark = None if baseline is None or not math.isfinite(baseline.score) else baseline.score
        lines = [challenge.threshold * scale] + ([] if mark is None else [mark * scale])
        bins = score_bins(challenge, revealed, scale=scale, lines=lines)
        svg = charts.binned_histogram(
            bins.counts,
            bins.edges,
            bins.infinite,
            bins.students,
            challenge.threshold,
            percent=percent,
            label=_("best %(label)s") % {"label": score_label_inline(challenge)},
            infinite_means=challenge.kind.infinite_score_means,
            baseline=mark,
        ).svg
        cache.set(key, svg, HISTOGRAM_CACHE_SECONDS)
    return bytes(svg)


@require_GET
def challenge_histogram(request: HttpRequest, slug: str) -> HttpResponse:
    """Public, like the board, and in the same phase as the viewer's board."""
    challenge = challenge_public(slug)
    revealed = results_revealed_to(challenge, request.user)
    response = HttpResponse(challenge_histogram_svg(challenge, revealed), content_type=SVG)
    # Signed in, the phase may be the viewer's own (an open window after an early reveal).
    shared = not request.user.is_authenticated
    patch_cache_control(response, public=shared, private=not shared, max_age=HISTOGRAM_MAX_AGE)
    return response
