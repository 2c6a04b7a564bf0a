"""The profile page (``/accounts/profile/``): the student's enrolments, their password and
university sign-in, and their API token for scripts, made (or replaced) by a POST and shown in
that one answer only."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.oidc import oidc_configured, oidc_form_action, oidc_identity
from accounts.saml import saml_profile
from courses.access import AuthedRequest
from courses.models import Enrollment
from submissions.models import ApiToken


def _profile_page(request: AuthedRequest, new_key: str = "") -> HttpResponse:
    token = ApiToken.objects.filter(user=request.user).select_related("user").first()
    enrollments = Enrollment.objects.filter(user=request.user).select_related("semester__course")
    saml = saml_profile(request.user)
    response = render(
        request,
        "accounts/profile.html",
        {
            "token": token,
            "token_revoked": token is not None and token.revoked(),
            "new_key": new_key,
            "enrollments": enrollments,
            "api_root": request.build_absolute_uri("/api/"),
            "oidc_provider_name": settings.OIDC_PROVIDER_NAME if oidc_configured() else "",
            "oidc_identity": oidc_identity(request.user),
            **saml,
        },
    )
    # The "Link my university account" forms redirect to the provider.
    if form_action := oidc_form_action() + saml["saml_form_action"]:
        response._csp_update = {"form-action": ["'self'", *form_action]}  # type: ignore[attr-defined]
    return response


# The profile is never cached (no-store): it is a signed-in page, and the answer that makes a
# token carries the key itself.
@never_cache
@login_required
def profile(request: AuthedRequest) -> HttpResponse:
    return _profile_page(request)


@never_cache
@require_POST
@login_required
def token_regenerate(request: AuthedRequest) -> HttpResponse:
    # The key is shown in this answer and nowhere else: not redirected through the session
    # (stored in the database), and only its digest is kept. Reloading makes another one.
    return _profile_page(request, new_key=ApiToken.issue(request.user))
