"""``manage.py create_token USERNAME``: a new working token alone on stdout; on stderr, that it
replaced the old one."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client


def create_token(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def api_status(token: str) -> int:
    return Client().get("/api/challenges/", HTTP_AUTHORIZATION=f"Token {token}").status_code


def test_it_prints_a_working_token_alone(student):
    output, errors = create_token("student")

    token, end = output[:-1], output[-1:]
    assert end == "\n"
    assert token.strip() == token and " " not in token
    assert api_status(token) == 200
    assert errors == ""


def test_it_replaces_the_token_and_says_so_on_stderr(student):
    first, _ = create_token("student")

    second, errors = create_token("student")

    assert second != first
    assert api_status(first.strip()) == 401
    assert api_status(second.strip()) == 200
    assert "Replaced the API token of student" in errors
    assert first.strip() not in errors and second.strip() not in errors


def test_it_still_accepts_regenerate(student):
    output, _ = create_token("student", "--regenerate")

    assert api_status(output.strip()) == 200


def test_it_fails_for_an_unknown_user(db):
    with pytest.raises(CommandError, match="no user"):
        create_token("nobody")
