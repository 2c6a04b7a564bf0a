from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from courses.models import Semester
from courses.roster import roster_import


class Command(BaseCommand):
    help = (
        "Enrol the students of a CSV roster (username,email,first_name,last_name) in a semester,"
        " creating accounts (unusable password) or linking existing ones. Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--semester", required=True, help="COURSE-SLUG/SEMESTER-SLUG, e.g. i2dl/ws2026"
        )
        parser.add_argument("file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        course_slug, _, semester_slug = options["semester"].partition("/")
        semester = Semester.objects.filter(course__slug=course_slug, slug=semester_slug).first()
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
