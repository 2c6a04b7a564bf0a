"""``manage.py standings``: check (and fix) the maintained standings the leaderboards read."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from courses.models import Challenge
from submissions.standings import standings_check


class Command(BaseCommand):
    help = (
        "Recompute every student's standing (best submission, upload count) from their"
        " submissions and report those that differ from the stored ones; --fix rewrites them."
        " Exits 1 when a difference was found and not fixed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--challenge", help="only this challenge (slug); default: all")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--check",
            action="store_true",
            help="report standings that differ and exit 1 if any do (the default)",
        )
        mode.add_argument("--fix", action="store_true", help="rewrite the ones that differ")

    def handle(self, *args: Any, **options: Any) -> None:
        challenges = Challenge.objects.order_by("slug")
        if options["challenge"]:
            challenges = challenges.filter(slug=options["challenge"])
            if not challenges.exists():
                raise CommandError(f"no challenge {options['challenge']!r}")
        found = 0
        for challenge in challenges:
            drifts = standings_check(challenge, fix=options["fix"])
            found += len(drifts)
            self.stdout.write(f"{challenge.slug}: {len(drifts)} standing(s) differ")
            for d in drifts:
                self.stdout.write(f"  enrolment {d.enrollment_id}: {d.stored} → {d.expected}")
        if found and not options["fix"]:
            raise CommandError(f"{found} standing(s) differ: run with --fix to rewrite them")
        if found:
            self.stdout.write(f"{found} standing(s) rewritten")
