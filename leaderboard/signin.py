"""Sign-in throttling (django-axes) as this site wants it: who a client is, and what a locked
out client reads.

Axes counts failures per username *and* address (``AXES_LOCKOUT_PARAMETERS``), so a lecture hall
behind one NAT keeps signing in while one account is being guessed at. Both ``/accounts/login/``
and ``/admin/login/`` authenticate through the same backends, so both are covered. Single
sign-on (OIDC, SAML) is left to the university's identity provider (``single_sign_on``).
"""

from __future__ import annotations

from typing import Any

from axes.helpers import get_client_username, get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone


def client_ip(request: HttpRequest) -> str:
    """The client's address: the proxy's last ``X-Forwarded-For`` entry when one is trusted.

    The proxy appends the address it saw to whatever the client sent, so only the right-most
    entry is a fact; without a proxy the header is the client's own word and is ignored.
    """
    remote = str(request.META.get("REMOTE_ADDR", ""))
    if not settings.TRUST_PROXY_HEADERS:
        return remote
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")[-1].strip()
    return forwarded or remote


def locked_out(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """429 with what happened and when to try again (each attempt meanwhile restarts the wait)."""
    cool_off = get_cool_off(request)
    retry_at = timezone.now() + cool_off if cool_off else None
    context = {
        "username": get_client_username(request, credentials) or "",
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "minutes": int(cool_off.total_seconds() // 60) if cool_off else None,
        "retry_at": retry_at,
    }
    response = render(request, "registration/locked_out.html", context, status=429)
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response


def single_sign_on(request: HttpRequest, credentials: dict[str, Any] | None = None) -> bool:
    """Whether a sign-in is not a password's (``AXES_WHITELIST_CALLABLE``): OIDC and SAML
    authenticate without a username. Axes neither counts nor refuses those. There is no password
    here to guess (the identity provider throttles its own form, and a forged callback fails its
    state or signature), while counted per address without a username, the refusals of a
    lecture hall's students who are not on a roster yet would lock single sign-on for everyone
    behind that hall's address."""
    return not (credentials or {}).get("username")
