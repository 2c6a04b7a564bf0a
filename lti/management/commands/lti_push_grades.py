"""Send every student's score in a challenge to the linked LMS courses again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from courses.models import Challenge
from lti.grades import push_challenge


class Command(BaseCommand):
    help = "Re-send the scores of a challenge to every LMS course linked to its semester."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--challenge", required=True, metavar="SLUG")

    def handle(self, *args: Any, **options: Any) -> None:
        challenge = (
            Challenge.objects.select_related("semester__course")
            .filter(slug=options["challenge"])
            .first()
        )
        if challenge is None:
            raise CommandError(f"no challenge {options['challenge']}")
        report = push_challenge(challenge, force=True)
        for error in report.errors:
            self.stderr.write(error)
        self.stdout.write(str(report))
