from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from submissions.backup import BackupError, backup


class Command(BaseCommand):
    help = (
        "Back up the site into DIR: a consistent database snapshot (pg_dump, or SQLite's backup"
        " API) and a manifest of the stored uploads and pictures with their sha256."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dir", type=Path, help="a new or empty folder")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            manifest = backup(options["dir"], say=self.stdout.write)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"backed up to {options['dir']}: the database and"
                f" {len(manifest['objects'])} object(s) in the manifest"
            )
        )
