"""Roster import: a CSV of students in, accounts and enrolments out, safe to run twice.

The file has a header with at least ``username`` (and usually ``email``, ``first_name``,
``last_name``); other columns are ignored; commas or semicolons separate the fields. A row links
to an existing account by username, else by email (case-insensitive, only when exactly one
account has it), else creates one. New accounts get an unusable password: students sign in
through the university's sign-in, an invitation (``import_roster --invite``, in ``accounts``)
or "Forgot your password?". Existing accounts are never
changed, their passwords least of all.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, cast

from django.contrib.auth.models import User
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from courses.models import Enrollment, Semester

PROGRESS_EVERY = 500


@dataclass
class RosterReport:
    created_users: int = 0
    linked_users: int = 0
    created_enrollments: int = 0
    already_enrolled: int = 0
    #: "line 7: ..." for every row that was skipped
    errors: list[str] = field(default_factory=list)
    #: the accounts of the rows imported (created or linked), for what comes next (invitations)
    user_ids: list[int] = field(default_factory=list, repr=False, compare=False)

    def __str__(self) -> str:
        return (
            f"{self.created_users} account(s) created, {self.linked_users} linked, "
            f"{self.created_enrollments} enrolment(s) created, "
            f"{self.already_enrolled} already enrolled, {len(self.errors)} error(s)"
        )


class RowError(Exception):
    pass


def roster_rows(file: IO[str] | Iterable[str]) -> Iterable[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV with a header; semicolons work as well as commas."""
    lines = iter(file)
    header = next(lines, "")
    delimiter = ";" if header.count(";") > header.count(",") else ","
    reader = csv.DictReader(_chain(header, lines), delimiter=delimiter)
    if reader.fieldnames is not None:
        reader.fieldnames = [name.strip().lower().lstrip("\ufeff") for name in reader.fieldnames]
    for row in reader:
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None}


def _chain(first: str, rest: Iterable[str]) -> Iterable[str]:
    yield first
    yield from rest


def roster_import(
    semester: Semester,
    rows_or_file: str | IO[str] | Iterable[str] | Iterable[Mapping[str, str]],
    *,
    progress: Callable[[int], None] | None = None,
) -> RosterReport:
    """Enrol every student of the roster in ``semester``; see the module's docstring."""
    report = RosterReport()
    for number, (line, row) in enumerate(_numbered(rows_or_file), start=1):
        try:
            # One savepoint per row: a bad row is reported, the others are kept.
            with transaction.atomic():
                user_id, user_created, enrolled = _import_row(semester, row)
        except (RowError, IntegrityError) as exc:
            report.errors.append(f"line {line}: {exc}")
        else:
            report.user_ids.append(user_id)
            report.created_users += user_created
            report.linked_users += not user_created
            report.created_enrollments += enrolled
            report.already_enrolled += not enrolled
        if progress is not None and number % PROGRESS_EVERY == 0:
            progress(number)
    return report


def _numbered(
    rows_or_file: str | IO[str] | Iterable[str] | Iterable[Mapping[str, str]],
) -> Iterable[tuple[int, Mapping[str, str]]]:
    if isinstance(rows_or_file, str):
        yield from roster_rows(rows_or_file.splitlines())
        return
    items = iter(rows_or_file)
    first = next(items, None)
    if first is None:
        return
    if isinstance(first, str):
        yield from roster_rows(_chain(first, cast(Iterator[str], items)))
        return
    # Already parsed rows (dicts): numbered as lines after a header.
    rows = cast(Iterator[Mapping[str, str]], items)
    yield from enumerate(itertools.chain([first], rows), start=2)


def _import_row(semester: Semester, row: Mapping[str, str]) -> tuple[int, bool, bool]:
    """(the account's id, account created, enrolment created)"""
    username = (row.get("username") or "").strip()
    email = (row.get("email") or "").strip()
    if not username:
        raise RowError("no username")
    try:
        UnicodeUsernameValidator()(username)
        if email:
            validate_email(email)
    except ValidationError as exc:
        raise RowError("; ".join(exc.messages)) from exc

    user = User.objects.filter(username=username).first()
    if user is None and email:
        matches = list(User.objects.filter(email__iexact=email)[:2])
        if len(matches) > 1:
            raise RowError(f"{email} belongs to several accounts; enrol this student by hand")
        user = matches[0] if matches else None
    user_created = user is None
    if user is None:
        user = User(
            username=username,
            email=email,
            first_name=(row.get("first_name") or "")[:150],
            last_name=(row.get("last_name") or "")[:150],
        )
        user.set_unusable_password()
        user.save()
    _, enrolled = Enrollment.objects.get_or_create(user=user, semester=semester)
    return user.pk, user_created, enrolled
