"""``manage.py import_roster --invite`` / ``--reinvite``."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import CommandError, call_command

from courses.models import Enrollment

ROSTER = "username,email\nada,ada@uni.example\nalan,alan@uni.example\n"


@pytest.fixture
def roster_file(tmp_path: Path) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER, encoding="utf-8")
    return path


def import_roster(path: Path, *flags: str) -> str:
    out = StringIO()
    call_command(
        "import_roster", "--semester", "i2dl/ws2026", str(path), *flags, stdout=out, stderr=out
    )
    return out.getvalue()


def test_it_invites_the_imported_students_once(semester, roster_file):
    first = import_roster(roster_file, "--invite")
    second = import_roster(roster_file, "--invite")

    assert "2 invitation(s) sent, 0 already invited" in first
    assert "0 invitation(s) sent, 2 already invited" in second
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@uni.example", "alan@uni.example"]


def test_it_sends_a_fresh_link_with_reinvite(semester, roster_file):
    import_roster(roster_file, "--invite")

    output = import_roster(roster_file, "--invite", "--reinvite")

    assert "2 invitation(s) sent" in output
    assert len(mail.outbox) == 4


def test_it_invites_nobody_without_invite(semester, roster_file):
    output = import_roster(roster_file)

    assert "invitation" not in output
    assert mail.outbox == []


def test_it_leaves_out_students_of_the_semester_who_are_not_in_the_file(semester, roster_file):
    grace = User.objects.create(username="grace", email="grace@uni.example")
    Enrollment.objects.create(user=grace, semester=semester)

    import_roster(roster_file, "--invite")

    assert "grace@uni.example" not in [m.to[0] for m in mail.outbox]


def test_it_refuses_reinvite_without_invite(semester, roster_file):
    with pytest.raises(CommandError, match="--reinvite goes with --invite"):
        import_roster(roster_file, "--reinvite")
