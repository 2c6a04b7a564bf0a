"""Error pages: JSON for the API (scripts parse it), Django's own pages everywhere else.

Wired as ``handler400/403/404/500`` in ``config.urls``, so a URL the resolver cannot match (a
malformed id under ``/api/``) answers ``{"error", "code"}`` like every API error.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _json(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": message, "code": code}, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _json(400, "bad_request", "malformed request")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _json(403, "forbidden", "not allowed")
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _json(404, "not_found", "no such resource")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return _json(500, "server_error", "the server failed; try again later")
    return defaults.server_error(request)
