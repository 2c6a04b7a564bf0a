from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from submissions.backup import BackupError, restore


class Command(BaseCommand):
    help = (
        "Restore a backup written by `backup DIR` into this site's empty database, then check"
        " that every stored object in its manifest is in the store with its sha256."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dir", type=Path, help="the backup's folder")
        parser.add_argument(
            "--skip-objects",
            action="store_true",
            help="do not check the stored objects (the store is being restored separately)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            restored = restore(
                options["dir"], say=self.stdout.write, check_objects=not options["skip_objects"]
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        if restored.missing or restored.changed:
            raise CommandError(
                f"the database is restored, but of {restored.objects} stored object(s)"
                f" {len(restored.missing)} are missing ({', '.join(restored.missing[:5])}) and"
                f" {len(restored.changed)} differ ({', '.join(restored.changed[:5])})"
            )
        self.stdout.write(self.style.SUCCESS(f"restored from {options['dir']}"))
