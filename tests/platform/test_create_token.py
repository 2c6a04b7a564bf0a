"""``manage.py create_token USERNAME``: the token alone on stdout."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from submissions.models import ApiToken


def create_token(*args: str) -> str:
    out = StringIO()
    call_command("create_token", *args, stdout=out)
    return out.getvalue()


def test_it_prints_the_token_alone(student):
    output = create_token("student")

    assert output == ApiToken.objects.get(user=student).key + "\n"


def test_it_prints_the_same_token_again(student):
    assert create_token("student") == create_token("student")


def test_it_replaces_the_token_when_asked(student):
    first = create_token("student")

    assert create_token("student", "--regenerate") != first


def test_it_fails_for_an_unknown_user(db):
    with pytest.raises(CommandError, match="no user"):
        create_token("nobody")
