"""The Content-Security-Policy allows only the site's own scripts and styles, so the pages must
hold no inline script, style element, style attribute or event handler (they would break)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.platform.conftest import graded

ROOT = Path(__file__).resolve().parents[2]

INLINE = [
    re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    re.compile(r"<style[\s>]", re.IGNORECASE),
    re.compile(r"\sstyle\s*=", re.IGNORECASE),
    re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    re.compile(r"javascript:", re.IGNORECASE),
]


def inline_parts(html: str) -> list[str]:
    return [match.group(0) for pattern in INLINE for match in pattern.finditer(html)]


def test_it_sends_a_policy_of_the_sites_own_scripts_and_styles(client, db):
    policy = client.get("/")["Content-Security-Policy"]

    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"


@pytest.fixture
def pages(enrollment, challenge):
    submission = graded(enrollment, challenge, 2.0)
    return [
        "/",
        "/accounts/login/",
        f"/challenges/{challenge.slug}/",
        f"/challenges/{challenge.slug}/staff/",
        f"/submissions/{submission.pk}/",
        "/submissions/",
        "/accounts/profile/",
        "/admin/",
        f"/admin/courses/challenge/{challenge.pk}/change/",
        "/admin/submissions/submission/",
    ]


def test_no_page_holds_inline_code_the_policy_would_block(client, staff, pages):
    client.force_login(staff)

    found = {}
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        parts = inline_parts(response.content.decode())
        if parts:
            found[url] = parts
    assert found == {}


def test_no_template_or_script_writes_inline_styles():
    sources = [
        *ROOT.glob("leaderboard/templates/**/*.html"),
        *ROOT.glob("leaderboard/static/**/*.js"),
    ]
    found = [
        str(path.relative_to(ROOT))
        for path in sources
        if inline_parts(path.read_text()) or 'setAttribute("style' in path.read_text()
    ]
    assert found == []
