"""Refuse an oversized request body before anything reads it: first in ``MIDDLEWARE``.

CSRF checking reads ``request.POST``, which spools a large body to a temporary file, so a
300 MB anonymous POST to the sign-in page used to land on disk before anything refused it. The
limit is the largest upload any challenge allows plus room for the form's other fields: nothing
on the site takes more. A body with a ``Content-Length`` above it is answered 413 at once,
unread; a chunked body (no length; gunicorn sets ``wsgi.input_terminated``, and Django alone
would ignore it) is read here, and refused with 413 the moment it passes the limit. The
reverse proxy caps bodies as well (deploy/Caddyfile); this is the same rule for whatever
reaches gunicorn directly.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import IO

from django.core.handlers.wsgi import LimitedStream
from django.db.models import Max
from django.http import HttpRequest, HttpResponse, JsonResponse

from courses.models import Challenge

MB = 1 << 20
#: the form's other fields and the multipart envelope around the file
FORM_MARGIN = 1 * MB
CHUNK = 64 * 1024
#: how long a process trusts its idea of the largest upload (one aggregate query to refresh)
REFRESH_SECONDS = 30.0

_cached: tuple[float, int] = (0.0, 0)


def body_limit() -> int:
    """The largest body the site accepts, in bytes."""
    global _cached
    now = time.monotonic()
    expires, limit = _cached
    if now >= expires:
        largest = Challenge.objects.aggregate(largest=Max("max_file_mb"))["largest"] or 0
        limit = int(largest) * MB + FORM_MARGIN
        _cached = (now + REFRESH_SECONDS, limit)
    return limit


def forget_limit() -> None:
    """Drop the cached limit (tests that change challenges)."""
    global _cached
    _cached = (0.0, 0)


def read_capped(stream: IO[bytes], limit: int) -> bytes | None:
    """A chunked body read whole, or None as soon as it passes ``limit`` (the rest unread).

    In memory: at most ``limit`` bytes, the largest upload the site accepts anyway.
    """
    body = io.BytesIO()
    while True:
        chunk = stream.read(min(CHUNK, limit + 1 - body.tell()))
        if not chunk:
            return body.getvalue()
        body.write(chunk)
        if body.tell() > limit:
            return None


def too_large(request: HttpRequest, limit: int) -> HttpResponse:
    message = f"the request body is larger than this site accepts ({limit // MB} MB)"
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"error": message, "code": "too_large"}, status=413)
    else:
        response = HttpResponse(
            "<!doctype html><title>Too large</title><h1>Request too large</h1>"
            f"<p>The {message.removeprefix('the ')}.</p>",
            status=413,
        )
    return response  # WSGI forbids setting Connection; the server closes an unread body's socket


class RequestBodyLimit:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.META.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if raw or chunked:
            limit = body_limit()
            if raw:
                if not raw.isascii() or not raw.isdecimal():
                    return HttpResponse("malformed Content-Length", status=400)
                if int(raw) > limit:
                    return too_large(request, limit)
            elif request.META.get("wsgi.input_terminated"):
                body = read_capped(request.META["wsgi.input"], limit)
                if body is None:
                    return too_large(request, limit)
                # Django reads a body by its length: give it one, so forms work as usual.
                request.META["CONTENT_LENGTH"] = str(len(body))
                request._stream = LimitedStream(io.BytesIO(body), len(body))  # type: ignore[assignment]
        return self.get_response(request)
