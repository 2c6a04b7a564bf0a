"""Read the roster of every LMS course linked to a semester (NRPS) and update enrolments."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from courses.models import Semester
from lti.roster import roster_sync


class Command(BaseCommand):
    help = "Sync the rosters of the LMS courses linked to semesters (all, or one semester)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--semester", metavar="COURSE/SEMESTER", help="e.g. i2dl/ws2026")

    def handle(self, *args: Any, **options: Any) -> None:
        semester = None
        if options["semester"]:
            course, _, slug = options["semester"].partition("/")
            semester = Semester.objects.filter(course__slug=course, slug=slug).first()
            if semester is None:
                raise CommandError(f"no semester {options['semester']}")
        counts = roster_sync(semester)
        for error in counts.errors:
            self.stderr.write(error)
        self.stdout.write(str(counts))
