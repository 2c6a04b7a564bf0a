import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from leaderboard.models import Challenge
from submissions.models import RegradeBatch
from submissions.regrade import (
    RegradeRefused,
    regrade_batch_progress,
    regrade_batch_report,
    regrade_batch_start,
)


class Command(BaseCommand):
    help = (
        "Re-grade every graded or failed submission of a challenge as one batch, wait for the"
        " workers (wherever they run) and print what changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--challenge", required=True, help="the challenge's slug")
        parser.add_argument("--dry-run", action="store_true", help="report, never publish")
        parser.add_argument("--reason", default="manage.py regrade", help="for the admin log")
        parser.add_argument("--user", help="staff username to record as the one who re-graded")
        parser.add_argument("--no-wait", action="store_true", help="start it and return")
        parser.add_argument(
            "--poll", type=float, default=2.0, help="seconds between progress lines"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            challenge = Challenge.objects.select_related("semester__course").get(
                slug=options["challenge"]
            )
        except Challenge.DoesNotExist:
            raise CommandError(f"no challenge {options['challenge']!r}") from None
        user = None
        if options["user"]:
            User = get_user_model()
            try:
                user = User.objects.get(**{User.USERNAME_FIELD: options["user"]})
            except User.DoesNotExist:
                raise CommandError(f"no user {options['user']!r}") from None
        try:
            batch = regrade_batch_start(
                challenge, user, options["reason"], dry_run=options["dry_run"]
            )
        except RegradeRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"re-grade #{batch.pk}: {batch.total} submission(s) queued")
        if options["no_wait"]:
            return
        while True:
            batch.refresh_from_db()
            self.stdout.write(str(regrade_batch_progress(batch)))
            if batch.status != RegradeBatch.Status.RUNNING:
                break
            time.sleep(options["poll"])
        self.stdout.write(f"re-grade #{batch.pk}: {batch.get_status_display()}")
        changes = regrade_batch_report(batch)
        self.stdout.write(f"{len(changes)} change(s)")
        for c in changes:
            self.stdout.write(
                f"{c.handle} ({c.username}) {c.submission_id}:"
                f" {c.old_score} → {c.new_score}, passed {c.old_passed} → {c.new_passed}"
            )
