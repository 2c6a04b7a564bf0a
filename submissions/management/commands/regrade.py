"""``manage.py regrade``: re-grade a challenge as one batch, follow it, publish or cancel it."""

from __future__ import annotations

import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from courses.models import Challenge
from submissions.models import RegradeBatch
from submissions.regrade import (
    Progress,
    RegradeRefused,
    regrade_batch_cancel,
    regrade_batch_publish,
    regrade_batch_report,
    regrade_batch_start,
)

BAR_WIDTH = 30


def bar(progress: Progress, elapsed: float) -> str:
    """``[#########.....] 12 of 40 graded, 1 failure(s), 0:42``: one line, redrawn in place."""
    filled = BAR_WIDTH * progress.done // progress.total if progress.total else BAR_WIDTH
    minutes, seconds = divmod(int(elapsed), 60)
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {progress}, {minutes}:{seconds:02d}"


class Command(BaseCommand):
    help = (
        "Re-grade every graded or failed submission of a challenge as one batch, wait for the"
        " workers (wherever they run) showing progress, and print what changed. Also publishes"
        " or cancels a batch (e.g. a dry run) by its number."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--challenge", help="the challenge's slug: start a re-grade of it")
        what.add_argument("--watch", type=int, metavar="N", help="follow re-grade #N")
        what.add_argument("--publish", type=int, metavar="N", help="publish re-grade #N")
        what.add_argument("--cancel", type=int, metavar="N", help="cancel re-grade #N")
        parser.add_argument(
            "--semester",
            help="the semester the challenge must belong to (SLUG or COURSE/SLUG): a guard"
            " against re-grading another term's challenge",
        )
        parser.add_argument("--dry-run", action="store_true", help="report, never publish")
        parser.add_argument("--reason", default="manage.py regrade", help="for the admin log")
        parser.add_argument("--user", help="staff username to record as the one who acted")
        parser.add_argument("--no-wait", action="store_true", help="start it and return")
        parser.add_argument("--poll", type=float, default=2.0, help="seconds between updates")

    def handle(self, *args: Any, **options: Any) -> None:
        user = self._user(options["user"])
        try:
            if options["publish"] is not None:
                batch = self._batch(options["publish"])
                updated = regrade_batch_publish(batch, user)
                self.stdout.write(f"re-grade #{batch.pk} published: {updated} submission(s)")
                return
            if options["cancel"] is not None:
                batch = self._batch(options["cancel"])
                cancelled = regrade_batch_cancel(batch, user, options["reason"])
                self.stdout.write(f"re-grade #{batch.pk} cancelled: {cancelled} attempt(s) not run")
                return
            if options["watch"] is not None:
                batch = self._batch(options["watch"])
            else:
                challenge = self._challenge(options["challenge"], options["semester"])
                batch = regrade_batch_start(
                    challenge, user, options["reason"], dry_run=options["dry_run"]
                )
                self.stdout.write(f"re-grade #{batch.pk}: {batch.total} submission(s) queued")
                if options["no_wait"]:
                    return
        except RegradeRefused as exc:
            raise CommandError(str(exc)) from None
        try:
            self._follow(batch, options["poll"])
        except KeyboardInterrupt:
            self.stdout.write("")
            raise CommandError(
                f"stopped waiting; re-grade #{batch.pk} goes on. Follow it with"
                f" `manage.py regrade --watch {batch.pk}` or on the challenge's admin page."
            ) from None
        self._report(batch)

    def _user(self, username: str | None) -> Any:
        if not username:
            return None
        User = get_user_model()
        try:
            return User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(f"no user {username!r}") from None

    def _batch(self, pk: int) -> RegradeBatch:
        try:
            return RegradeBatch.objects.select_related("challenge__semester").get(pk=pk)
        except RegradeBatch.DoesNotExist:
            raise CommandError(f"no re-grade #{pk}") from None

    def _challenge(self, slug: str, semester: str | None) -> Challenge:
        try:
            challenge = Challenge.objects.select_related("semester__course").get(slug=slug)
        except Challenge.DoesNotExist:
            raise CommandError(f"no challenge {slug!r}") from None
        if semester:
            where = f"{challenge.semester.course.slug}/{challenge.semester.slug}"
            if semester not in (challenge.semester.slug, where):
                raise CommandError(f"{slug} belongs to {where}, not {semester}")
        return challenge

    def _follow(self, batch: RegradeBatch, poll: float) -> None:
        """Progress until the batch leaves "running": a bar on a terminal, else a line a change."""
        tty = self.stdout.isatty()
        started, last = time.monotonic(), None
        while True:
            batch.refresh_from_db()
            progress = Progress.of(batch)
            if tty:
                self.stdout.write("\r" + bar(progress, time.monotonic() - started), ending="")
                self.stdout.flush()
            elif progress != last:
                self.stdout.write(str(progress))
            last = progress
            if batch.status != RegradeBatch.Status.RUNNING:
                break
            time.sleep(poll)
        if tty:
            self.stdout.write("")

    def _report(self, batch: RegradeBatch) -> None:
        self.stdout.write(f"re-grade #{batch.pk}: {batch.get_status_display()}")
        if batch.note:
            self.stdout.write(batch.note)
        changes = regrade_batch_report(batch)
        self.stdout.write(f"{len(changes)} change(s)")
        for c in changes:
            self.stdout.write(
                f"{c.handle} ({c.username}) {c.submission_id}:"
                f" {c.old_score} → {c.new_score}, passed {c.old_passed} → {c.new_passed}"
            )
        if batch.status == RegradeBatch.Status.COMPLETE:
            self.stdout.write(
                f"not published: publish it with `manage.py regrade --publish {batch.pk}`"
                " or from the challenge's admin page"
            )
