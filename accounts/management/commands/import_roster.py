"""``import_roster``: the roster import of ``courses.roster``, plus invitations.

It lives here, not in ``courses``, because invitations are this app's and ``courses`` sits
below it (README, "Architecture").
"""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.invitations import invitations_send
from courses.models import Semester
from courses.roster import roster_import


class Command(BaseCommand):
    help = (
        "Enrol the students of a CSV roster (username,email,first_name,last_name) in a semester,"
        " creating accounts (unusable password) or linking existing ones. Safe to run again."
        " With --invite, email an invitation to every imported student who never signed in."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--semester", required=True, help="COURSE-SLUG/SEMESTER-SLUG, e.g. i2dl/ws2026"
        )
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--invite",
            action="store_true",
            help="email a one-time link to set a password to those never signed in and never"
            " invited to this semester",
        )
        parser.add_argument(
            "--reinvite",
            action="store_true",
            help="with --invite: also send a fresh link to those invited before who still never"
            " signed in",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["reinvite"] and not options["invite"]:
            raise CommandError("--reinvite goes with --invite")
        course_slug, _, semester_slug = options["semester"].partition("/")
        semester = (
            Semester.objects.filter(course__slug=course_slug, slug=semester_slug)
            .select_related("course")
            .first()
        )
        if semester is None:
            raise CommandError(f"no semester {options['semester']!r} (COURSE/SEMESTER)")
        try:
            with options["file"].open(encoding="utf-8-sig", newline="") as roster:
                report = roster_import(
                    semester, roster, progress=lambda n: self.stderr.write(f"… {n} rows")
                )
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {options['file']}: {exc}") from exc
        for error in report.errors:
            self.stderr.write(error)
        self.stdout.write(f"{semester}: {report}")
        if options["invite"]:
            invited = invitations_send(
                semester, user_ids=report.user_ids, reinvite=options["reinvite"]
            )
            self.stdout.write(f"{semester}: {invited}")
