"""The JSON API for scripts and notebooks, authenticated by ``Authorization: Token <key>``.

Errors are ``{"error": message, "code": code}`` with a fitting status. A request with a token is
exempt from CSRF (no cookie is involved); one that relies on the session cookie is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.core.paginator import EmptyPage, PageNotAnInteger
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from courses.access import AuthedRequest, is_staff
from courses.models import Challenge, Enrollment
from grader.evaluate import json_number
from grader.kinds import get_kind, kind_names
from leaderboard.board_pages import BaselineRow, board_page
from leaderboard.boards import LeaderboardRow
from submissions.access import metrics_for, visible_submissions
from submissions.forms import UploadForm, UploadRefused, upload_submit, upload_too_large
from submissions.models import ApiToken, Submission
from submissions.policies import (
    PolicyRefused,
    final_results_at,
    results_revealed_to,
    shown_result,
    submission_counted,
    submission_select,
)
from submissions.queue import queue_place

View = Callable[..., HttpResponse]


#: the keys of every kind's headline figures: each board row carries all of them
HEADLINE_KEYS = sorted(
    {figure.key for name in kind_names() for figure in get_kind(name).figures if figure.headline}
)


def error(status: int, code: str, message: str, **more: str) -> JsonResponse:
    response = JsonResponse({"error": message, "code": code, **more}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Token realm="api"'
    return response


def _token_user(request: HttpRequest) -> tuple[Any, JsonResponse | None]:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "token" or not key.strip():
        return None, error(401, "bad_token", "use the header 'Authorization: Token <token>'")
    token = ApiToken.find(key.strip())
    if token is None or not token.user.is_active:
        return None, error(401, "bad_token", "this token is not valid; see your profile page")
    if token.revoked():
        profile = request.build_absolute_uri(reverse("profile"))
        return None, error(
            401,
            "token_revoked",
            "this token was revoked because your password changed; make a new one on your"
            f" profile page: {profile}",
        )
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user, None


def _no_response(request: HttpRequest) -> HttpResponse:
    # Stands in for the view in a manual CSRF check: only the check's verdict is used.
    return HttpResponse()


def api_view(methods: tuple[str, ...], *, public: bool = False) -> Callable[[View], View]:
    """Authenticate by token (or session, with CSRF), allow ``methods``, answer JSON errors."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = error(405, "method_not_allowed", f"use {' or '.join(methods)}")
                response["Allow"] = ", ".join(methods)
                return response
            if "Authorization" in request.headers:
                user, problem = _token_user(request)
                if problem:
                    return problem
                request.user = user
            elif request.user.is_authenticated:
                if request.method not in ("GET", "HEAD", "OPTIONS"):
                    # A cookie rides along with cross-site requests; a token does not.
                    rejected = CsrfViewMiddleware(_no_response).process_view(
                        request, _no_response, (), {}
                    )
                    if rejected is not None:
                        return error(403, "csrf", "CSRF check failed; use a token instead")
            elif not public:
                return error(401, "no_token", "use the header 'Authorization: Token <token>'")
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def _challenge_json(challenge: Challenge, now: Any, user: Any) -> dict[str, Any]:
    final = final_results_at(challenge) if challenge.has_split else None
    return {
        "slug": challenge.slug,
        "title": challenge.title,
        "task": challenge.task,
        "course": challenge.semester.course.slug,
        "semester": challenge.semester.slug,
        "deadline": challenge.deadline.isoformat(),
        "threshold": challenge.threshold,
        "open": challenge.is_open(now),
        "scoring": challenge.scoring,
        "max_selected": challenge.max_selected,
        "public_fraction": challenge.public_fraction,
        "results_revealed": results_revealed_to(challenge, user, now),
        # when final results come out by themselves (the last personal window closes); null
        # without a split, or while staff hold them
        "final_results_at": final.isoformat() if final else None,
    }


@api_view(("GET",))
def challenge_list(request: AuthedRequest) -> HttpResponse:
    """Challenges of the semesters the user is enrolled in; staff get every challenge."""
    challenges = Challenge.objects.select_related("semester__course").order_by(
        "semester__course__slug", "-semester__starts_on", "deadline", "slug"
    )
    if not is_staff(request.user):
        challenges = challenges.filter(semester__enrollments__user_id=request.user.pk)
    now = timezone.now()
    return JsonResponse({"challenges": [_challenge_json(c, now, request.user) for c in challenges]})


@api_view(("POST",))
def submission_create_view(request: AuthedRequest, slug: str) -> HttpResponse:
    challenge = Challenge.objects.select_related("semester__course").filter(slug=slug).first()
    if challenge is None:
        return error(404, "not_found", f"no challenge {slug!r}")
    enrollment = Enrollment.objects.filter(
        user_id=request.user.pk, semester=challenge.semester
    ).first()
    if enrollment is None:
        return error(403, "not_enrolled", "you are not enrolled in this challenge's semester")
    if too_large := upload_too_large(request, challenge):
        return error(400, "file_too_large", too_large)
    if "file" not in request.FILES:
        return error(400, "no_file", "send the model as the multipart field 'file'")
    form = UploadForm(request.POST, request.FILES, challenge=challenge, enrollment=enrollment)
    try:
        submission = upload_submit(form)
    except UploadRefused as exc:
        reason = {"reason": exc.reason} if exc.reason else {}
        response = error(exc.http_status, exc.code, exc.message, **reason)
        if exc.retry_after:
            response["Retry-After"] = str(exc.retry_after)
        return response
    url = request.build_absolute_uri(reverse("api_submission_detail", args=[submission.pk]))
    response = JsonResponse(
        {"id": str(submission.pk), "status": submission.status, "url": url}, status=201
    )
    response["Location"] = url
    return response


def _submission_json(submission: Submission, user: Any) -> dict[str, Any]:
    """A result as ``user`` may see it now: what the challenge's policies show its student
    (``submissions.policies.shown_result``), less the grading host's facts for anyone but
    course staff (``submissions.access.metrics_for``), and its place while queued."""
    shown = shown_result(submission)
    place = queue_place(submission)
    return {
        "id": str(submission.pk),
        "status": submission.status,
        "score": json_number(shown.score),
        "passed": shown.passed,
        "public_score": json_number(shown.public_score),
        "private_score": json_number(shown.private_score),
        "selected": submission.selected,
        "counted": submission_counted(submission),
        "metrics": metrics_for(user, submission, shown.metrics),
        "error": submission.error,
        # while queued: 1 = next to be graded, and seconds until the result (None while no
        # worker is alive); None otherwise
        "queue_position": place.position,
        "eta_seconds": place.eta_seconds,
    }


@api_view(("GET",))
def submission_detail(request: AuthedRequest, pk: UUID) -> HttpResponse:
    submission = (
        visible_submissions(request.user)
        .select_related("challenge__semester")
        .filter(pk=pk)
        .first()
    )
    if submission is None:
        return error(404, "not_found", "no such submission")
    return JsonResponse(_submission_json(submission, request.user))


#: statuses of a refused selection
SELECT_STATUS = {"not_selectable": 409, "too_many_selected": 409, "deadline": 409}


@api_view(("POST", "DELETE"))
def submission_select_view(request: AuthedRequest, pk: UUID) -> HttpResponse:
    """Mark (POST) or unmark (DELETE) one's own graded upload as one that counts."""
    submission = (
        Submission.objects.select_related("challenge__semester__course", "enrollment")
        .filter(pk=pk, enrollment__user_id=request.user.pk)
        .first()
    )
    if submission is None:
        # Someone else's upload, even for staff: a selection is the student's own choice.
        return error(404, "not_found", "no such submission of yours")
    try:
        submission_select(submission, request.method == "POST")
    except PolicyRefused as exc:
        return error(SELECT_STATUS.get(exc.code, 400), exc.code, exc.message)
    if request.method == "DELETE":
        return HttpResponse(status=204)
    return JsonResponse(_submission_json(submission, request.user))


def _board_row(row: LeaderboardRow | BaselineRow) -> dict[str, Any]:
    return {
        "rank": row.rank,
        "handle": row.handle,
        "score": json_number(row.score),
        # Every kind's headline figures under their keys, null where this challenge's kind has
        # none of that name (the API's rows keep one shape).
        **{key: json_number(row.headline.get(key)) for key in HEADLINE_KEYS},
        "passed": row.passed,
        # After the reveal of a split challenge: the public score and places moved.
        "public_score": json_number(row.public_score),
        "moved": row.moved,
        # The course's reference model: unranked, no uploads, no time.
        "baseline": row.baseline,
        "submissions": None if isinstance(row, BaselineRow) else row.submissions,
        "submitted_at": None if isinstance(row, BaselineRow) else row.submitted_at.isoformat(),
    }


@api_view(("GET",), public=True)
def leaderboard(request: HttpRequest, slug: str) -> HttpResponse:
    """One page of the board (``?page=N``, ``?page=mine``: the page of the signed-in
    student's row), in the phase the viewer sees, with links to the next and previous pages."""
    challenge = Challenge.objects.select_related("semester__course").filter(slug=slug).first()
    if challenge is None:
        return error(404, "not_found", f"no challenge {slug!r}")
    user = request.user
    try:
        board = board_page(
            challenge,
            results_revealed_to(challenge, user),
            request.GET.get("page", "1"),
            user_id=user.pk if user.is_authenticated else None,
            strict=True,
        )
    except PageNotAnInteger:
        return error(400, "bad_page", "page is a whole number from 1, or 'mine'")
    except EmptyPage:
        return error(404, "no_page", "this board has no such page")
    page = board.page

    def link(number: int) -> str:
        return request.build_absolute_uri(f"{request.path}?{urlencode({'page': number})}")

    return JsonResponse(
        {
            "count": board.ranked,
            "page": page.number,
            "pages": page.paginator.num_pages,
            "per_page": board.per_page,
            "next": link(page.next_page_number()) if page.has_next() else None,
            "previous": link(page.previous_page_number()) if page.has_previous() else None,
            "my_page": board.my_page,
            "rows": [_board_row(row) for row in board.rows],
        }
    )
