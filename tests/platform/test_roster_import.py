"""``roster_import`` and ``manage.py import_roster``: accounts and enrolments from a CSV."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from courses.models import Enrollment
from courses.roster import RosterReport, roster_import
from tests.platform.conftest import make_user

ROSTER = """username,email,first_name,last_name,matriculation
ada,ada@uni.example,Ada,Lovelace,123
alan,ALAN@uni.example,Alan,Turing,456
grace,grace@uni.example,Grace,Hopper,789
"""


@pytest.fixture
def roster_file(tmp_path: Path) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER, encoding="utf-8")
    return path


def import_roster(path: Path) -> str:
    out = StringIO()
    call_command("import_roster", "--semester", "i2dl/ws2026", str(path), stdout=out, stderr=out)
    return out.getvalue()


def test_it_creates_accounts_and_enrolments_and_creates_nothing_the_second_time(
    semester, roster_file
):
    first = import_roster(roster_file)
    second = import_roster(roster_file)

    assert "3 account(s) created, 0 linked, 3 enrolment(s) created, 0 already enrolled" in first
    assert "0 account(s) created, 3 linked, 0 enrolment(s) created, 3 already enrolled" in second
    assert Enrollment.objects.filter(semester=semester).count() == 3
    ada = User.objects.get(username="ada")
    assert (ada.email, ada.get_full_name()) == ("ada@uni.example", "Ada Lovelace")
    assert not ada.has_usable_password()


def test_it_links_existing_accounts_by_username_or_email_and_keeps_their_password(semester):
    ada = make_user("ada")
    turing = User.objects.create_user("aturing", "alan@uni.example", "secret")

    report = roster_import(semester, ROSTER)

    assert (report.created_users, report.linked_users, report.created_enrollments) == (1, 2, 3)
    ada.refresh_from_db()
    turing.refresh_from_db()
    assert ada.check_password("ada")  # untouched
    assert ada.email == "ada@example.com"
    assert Enrollment.objects.filter(user=turing, semester=semester).exists()
    assert not User.objects.filter(username="alan").exists()


def test_it_keeps_an_existing_enrolment_and_its_handle(semester, student, enrollment):
    report = roster_import(semester, "username;email\nstudent;student@example.com\n")

    assert report == RosterReport(linked_users=1, already_enrolled=1)
    assert Enrollment.objects.get(user=student, semester=semester).handle == enrollment.handle


def test_it_reports_bad_rows_and_imports_the_others(semester):
    text = (
        "username,email\n"
        ",nobody@uni.example\n"
        "has space,x@uni.example\n"
        "mail,not-an-email\n"
        "fine,fine@uni.example\n"
    )

    report = roster_import(semester, text)

    assert report.created_enrollments == 1
    assert [error.split(":")[0] for error in report.errors] == ["line 2", "line 3", "line 4"]
    assert Enrollment.objects.filter(semester=semester).get().user.username == "fine"


def test_it_accepts_already_parsed_rows(semester):
    report = roster_import(semester, [{"username": "ada", "email": "ada@uni.example"}])

    assert report.created_enrollments == 1


def test_it_refuses_an_unknown_semester(db, roster_file):
    with pytest.raises(CommandError, match="no semester"):
        call_command("import_roster", "--semester", "nope/nope", str(roster_file))
