"""The profile page: the API token, and a button to replace it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from leaderboard.access import AuthedRequest
from leaderboard.models import Enrollment
from submissions.models import ApiToken


@login_required
def profile(request: AuthedRequest) -> HttpResponse:
    token = ApiToken.for_user(request.user)
    enrollments = Enrollment.objects.filter(user=request.user).select_related("semester__course")
    return render(
        request,
        "submissions/profile.html",
        {
            "token": token,
            "enrollments": enrollments,
            "api_root": request.build_absolute_uri("/api/"),
        },
    )


@require_POST
@login_required
def token_regenerate(request: AuthedRequest) -> HttpResponse:
    ApiToken.for_user(request.user, regenerate=True)
    messages.success(request, "A new API token was created; the old one no longer works.")
    return redirect("profile")
