"""Every URL pattern (the admin's included), walked with malformed path values and query values:
non-ASCII digits, negatives, huge numbers, empty values. Nothing answers 5xx, and /api/ answers
JSON errors."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from submissions.models import ApiToken
from tests.platform.conftest import graded

MALFORMED = ["²", "٣", "-1", "9" * 30, "0", "", "x%00", "1.5"]
QUERY_KEYS = ["id", "page", "format", "o", "q", "p", "pk", "next", "_changelist_filters", "e"]

_GROUP = re.compile(r"<(?:\w+:)?\w+>|\(\?P<\w+>[^)]*\)|\([^)]*\)")


def routes(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[str]:
    """Every pattern as one string, route and regex syntax alike, prefixes joined."""
    for entry in (resolver or get_resolver()).url_patterns:
        text = prefix + str(entry.pattern).lstrip("^").rstrip("$").replace("\\Z", "")
        if isinstance(entry, URLResolver):
            yield from routes(entry, text)
        elif isinstance(entry, URLPattern):
            yield text


def urls() -> list[str]:
    found = set()
    for route in routes():
        for value in MALFORMED:
            path = _GROUP.sub(value, route).replace("\\", "")
            found.add("/" + path.lstrip("/"))
    return sorted(found)


def queries() -> list[dict[str, str]]:
    return [{key: value for key in QUERY_KEYS} for value in MALFORMED]


@pytest.fixture
def clients(staff, student, enrollment, challenge) -> dict[str, Client]:
    graded(enrollment, challenge, 2.0)
    signed_in, admin, token = Client(), Client(), Client()
    signed_in.force_login(student)
    admin.force_login(staff)
    token.defaults["HTTP_AUTHORIZATION"] = f"Token {ApiToken.issue(student)}"
    return {"anonymous": Client(), "student": signed_in, "staff": admin, "token": token}


def test_it_walks_every_pattern_including_the_admin():
    walked = list(routes())
    assert any(route.startswith("admin/") for route in walked)
    assert any(route.startswith("api/") for route in walked)
    assert len(urls()) > 100


@pytest.mark.slow
def test_no_url_answers_a_malformed_value_with_a_server_error(clients):
    failures = []
    for url in urls():
        for who, client in clients.items():
            for query in [{}, *queries()]:
                for method in ("get", "post"):
                    response = getattr(client, method)(url, query)
                    problem = response.status_code >= 500 or (
                        url.startswith("/api/")
                        and response.status_code >= 400
                        and response["Content-Type"] != "application/json"
                    )
                    if problem:
                        failures.append((method, url, query.get("id"), who, response.status_code))
    assert failures == []
