"""The tool's pages under ``/lti/``: OIDC login initiation, the launch, the key set, the
instructor's choice of a challenge (deep linking), and the pages that say why a launch was
refused.

A refusal is a 4xx page that says why, never a 500 and never a sign-in: pylti1p3's checks and
this site's (a state or nonce used before, an account that may not be signed in by email) all
end in :func:`refused`, and the details go to the log.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from lti_tool.models import Key, LtiLaunch
from pylti1p3.contrib.django import DjangoMessageLaunch, DjangoOIDCLogin
from pylti1p3.deep_link_resource import DeepLinkResource

from accounts.identities import SignInRefused
from lti.launch import (
    ROLES_CLAIM,
    LaunchRefused,
    challenges_to_pick,
    launch_accept,
    launch_pick,
    roles_staff,
)
from lti.tool import DatabaseLaunchData, ToolConfig, spend_once, tool_key

logger = logging.getLogger(__name__)

#: the session's launch, for the page an instructor picks a challenge on
SESSION_LAUNCH = "lti_launch_id"
#: OIDC login parameter: the person chose to open the tool in a window of its own
NEW_WINDOW = "lti_new_window"


def _framable(response: HttpResponse) -> HttpResponse:
    """Pages the LMS may show inside its frame: the launch's first steps and refusals."""
    response._csp_replace = {"frame-ancestors": ["*"]}  # type: ignore[attr-defined]
    response.xframe_options_exempt = True
    return response


def refused(request: HttpRequest, reason: str, status: int = 403) -> HttpResponse:
    response = render(request, "lti/refused.html", {"reason": reason}, status=status)
    return _framable(response)


def _reason(exc: Exception) -> tuple[str, int]:
    """What to tell the person about a launch pylti1p3 refused, and the status."""
    text = str(exc)
    lowered = text.lower()
    if "state" in lowered:
        return (
            _(
                "This launch did not start in this browser window, or your browser did not"
                " keep the cookie the tool set for it (browsers block cookies inside another"
                " site's frame). Open the tool again from your course; if it runs in a frame,"
                " choose to open it in a new window."
            ),
            400,
        )
    if "nonce" in lowered:
        return (
            _("This launch is not one the tool started, or it is too old. Open the tool again."),
            400,
        )
    if "expired" in lowered:
        return (_("The launch has expired. Open the tool again from your course."), 401)
    if "registration not found" in lowered or "client id" in lowered or "issuer" in lowered:
        return (
            _(
                "Your learning platform (or this link's client id) is not registered with this"
                " site. Ask the course staff to register it."
            ),
            403,
        )
    if "deployment" in lowered:
        return (
            _(
                "This deployment of the tool in your learning platform is not registered here or"
                " not active. Ask the course staff to register it."
            ),
            403,
        )
    if "signature" in lowered or "public key" in lowered or "decode" in lowered:
        return (
            _(
                "The launch's signature does not match your learning platform's keys, so it"
                " cannot be trusted."
            ),
            403,
        )
    return (_("The launch could not be verified. Open the tool again from your course."), 400)


def jwks(request: HttpRequest) -> JsonResponse:
    """The tool's public keys (a JSON Web Key Set): every active key, the newest signing."""
    tool_key()
    return JsonResponse(Key.objects.as_jwks())


@csrf_exempt
@xframe_options_exempt
@require_http_methods(["GET", "POST"])
def login_init(request: HttpRequest, registration_uuid: Any = None) -> HttpResponse:
    """OIDC third-party login initiation (GET or POST, as the platform likes)."""
    params = request.POST if request.method == "POST" else request.GET
    target = params.get("target_link_uri")
    if not target or not params.get("iss") or not params.get("login_hint"):
        return refused(
            request,
            _("The learning platform did not say which tool to open (a parameter is missing)."),
            400,
        )
    if request.headers.get("Sec-Fetch-Dest") == "iframe" and not params.get(NEW_WINDOW):
        # The tool's pages refuse to be framed and browsers block cookies in another site's
        # frame: offer a window of its own instead of failing silently.
        query = urlencode({**params.dict(), NEW_WINDOW: "1"})
        url = f"{request.path}?{query}"
        return _framable(render(request, "lti/new_window.html", {"url": url}))
    try:
        oidc = DjangoOIDCLogin(
            request,
            ToolConfig(registration_uuid),
            launch_data_storage=DatabaseLaunchData(),
        )
        return oidc.disable_check_cookies().redirect(target)
    except Exception as exc:
        logger.info("LTI login initiation refused: %s", exc)
        reason, status = _reason(exc)
        return refused(request, reason, status)


@csrf_exempt
@xframe_options_exempt
@require_http_methods(["POST"])
def launch(request: HttpRequest) -> HttpResponse:
    """The launch (resource link or deep linking): validate, sign in, enrol, go on."""
    try:
        message_launch = DjangoMessageLaunch(
            request, ToolConfig(), launch_data_storage=DatabaseLaunchData()
        )
        message_launch.validate()
        data = message_launch.get_launch_data()
    except Exception as exc:
        logger.info("LTI launch refused: %s", exc)
        reason, status = _reason(exc)
        return refused(request, reason, status)
    if not spend_once(str(request.POST.get("state", "")), str(data.get("nonce", ""))):
        logger.info("LTI launch refused: state or nonce used before (iss %s)", data.get("iss"))
        return refused(
            request,
            _("This launch was used before; a launch works once. Open the tool again."),
            400,
        )
    lti_launch = LtiLaunch(message_launch)
    staff = roles_staff(lti_launch.get_claim(ROLES_CLAIM))
    if lti_launch.is_deep_link_launch and not staff:
        return refused(request, _("Only instructors choose which challenge a link opens."), 403)
    if not (lti_launch.is_deep_link_launch or lti_launch.is_resource_launch):
        return refused(request, _("This kind of launch is not supported."), 400)
    try:
        signed_in = request.user if request.user.is_authenticated else None
        launched = launch_accept(lti_launch, signed_in)
    except (LaunchRefused, SignInRefused) as exc:
        logger.info("LTI launch refused: %s", exc)
        return refused(request, str(exc), getattr(exc, "http_status", 403))
    login(request, launched.user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_LAUNCH] = lti_launch.get_launch_id()
    if lti_launch.is_deep_link_launch:
        return HttpResponseRedirect(reverse("lti_pick"))
    if launched.challenge is not None:
        return HttpResponseRedirect(reverse("challenge_detail", args=[launched.challenge.slug]))
    if launched.staff:
        return HttpResponseRedirect(reverse("lti_pick"))
    if launched.semester is not None:
        return HttpResponseRedirect(reverse("course_detail", args=[launched.semester.course.slug]))
    return render(request, "lti/not_placed.html")


@login_required
@require_http_methods(["GET", "POST"])
def pick(request: HttpRequest) -> HttpResponse:
    """An instructor chooses the challenge a placement opens (deep linking, or a link placed
    without one)."""
    try:
        message_launch = DjangoMessageLaunch.from_cache(
            str(request.session.get(SESSION_LAUNCH, "")),
            request,
            ToolConfig(),
            launch_data_storage=DatabaseLaunchData(),
        )
        lti_launch = LtiLaunch(message_launch)
        roles = lti_launch.get_claim(ROLES_CLAIM)
    except Exception as exc:
        logger.info("LTI pick without a launch: %s", exc)
        return refused(
            request, _("Open the tool from your course first; this page belongs to a launch."), 400
        )
    if not roles_staff(roles):
        return refused(request, _("Only instructors choose which challenge a link opens."), 403)
    context = lti_launch.context if lti_launch.context_claim is not None else None
    choices = challenges_to_pick(request.user, context)  # type: ignore[arg-type]
    error = ""
    if request.method == "POST":
        chosen = next((c for c in choices if c.slug == request.POST.get("challenge")), None)
        if chosen is None:
            error = _("Choose one of the challenges listed.")
        else:
            try:
                launch_pick(request.user, lti_launch, chosen, staff=True)  # type: ignore[arg-type]
            except LaunchRefused as exc:
                return refused(request, str(exc), exc.http_status)
            if lti_launch.is_deep_link_launch:
                return _deep_link_return(request, message_launch, chosen)
            return HttpResponseRedirect(reverse("challenge_detail", args=[chosen.slug]))
    return render(
        request,
        "lti/pick.html",
        {
            "choices": choices,
            "deep_linking": lti_launch.is_deep_link_launch,
            "error": error,
        },
        status=400 if error else 200,
    )


def _deep_link_return(request: HttpRequest, message_launch: Any, challenge: Any) -> HttpResponse:
    """Send the choice back to the platform: an LtiResourceLink with ``challenge=<slug>``."""
    resource = (
        DeepLinkResource()
        .set_url(request.build_absolute_uri(reverse("lti_launch")))
        .set_title(challenge.title)
        .set_custom_params({"challenge": challenge.slug})
    )
    deep_link = message_launch.get_deep_link()
    token = deep_link.get_response_jwt([resource])
    return_url = str(deep_link._deep_link_settings["deep_link_return_url"])
    parts = urlsplit(return_url)
    response = render(
        request,
        "lti/deep_link_return.html",
        {"return_url": return_url, "jwt": token, "challenge": challenge},
    )
    response._csp_update = {  # type: ignore[attr-defined]
        "form-action": [f"{parts.scheme}://{parts.netloc}"]
    }
    return response
