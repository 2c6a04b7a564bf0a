from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from submissions.demo import DemoSeeder


class Command(BaseCommand):
    help = (
        "Create a demo course (current and earlier semester, both challenges, synthetic hidden"
        " data, demo models, staff and student accounts). Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--insecure-demo-passwords",
            action="store_true",
            help="allow the demo accounts (password = username) even with DEBUG off",
        )
        parser.add_argument(
            "--skip-models", action="store_true", help="do not build the demo models"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["insecure_demo_passwords"]:
            raise CommandError(
                "DEBUG is off: the demo accounts' passwords equal their usernames. Pass"
                " --insecure-demo-passwords if this really is a throwaway demo site."
            )
        seeder = DemoSeeder(say=lambda line: self.stdout.write(line))
        seeder.run(build_models=not options["skip_models"])
